import Testing
@testable import ProbeKernels

/// The multiply-high division that copy and broadcast kernels use for index arithmetic.
@Suite struct FastDivisorTests {
    /// Divisors around powers of two, odd and large ones; numerators around multiples of the
    /// divisor and at the ends of the allowed range (r < 2^31), where a wrong magic shows first.
    @Test func equalsIntegerDivisionWhereItIsUsed() {
        var divisors = [1, 2, 3, 5, 6, 7, 49, 196, 197, 768, 1000, 2304, 50176, 65537, 1 << 20, 1_000_003, (1 << 31) - 1]
        for s in 1...30 { divisors += [(1 << s) - 1, 1 << s, (1 << s) + 1] }
        var rng: UInt64 = 0x9E3779B97F4A7C15
        func next() -> UInt32 { rng = rng &* 6364136223846793005 &+ 1442695040888963407; return UInt32(truncatingIfNeeded: rng >> 33) }
        for d in divisors {
            let f = FastDivisor(d)
            #expect(f.magic > 0 && f.magic < 1 << 32, "magic of \(d) does not fit 32 bits")
            var numerators: [UInt32] = [0, 1, UInt32((1 << 31) - 1), UInt32((1 << 31) - 2)]
            for q in [1, 2, 3, 1000, (1 << 31) / d - 1, (1 << 31) / d] where q >= 0 && q * d < 1 << 31 {
                for delta in [-1, 0, 1] where q * d + delta >= 0 && q * d + delta < 1 << 31 { numerators.append(UInt32(q * d + delta)) }
            }
            for _ in 0..<2000 { numerators.append(next() & 0x7FFF_FFFF) }
            for r in numerators {
                let got = f.divide(r)
                if got != r / UInt32(d) { Issue.record("\(r) / \(d): \(got), want \(r / UInt32(d))"); break }
            }
        }
    }

    /// The shader's shifts are 5 bits each in one word.
    @Test func shiftsPackedFiveBitsEach() {
        let f = [1, 2, 768, 3, 1 << 30, 5].map { FastDivisor($0) }
        let packed = FastDivisor.packShifts(f)
        for (i, x) in f.enumerated() { #expect((packed >> (5 * i)) & 31 == x.shift) }
    }
}
