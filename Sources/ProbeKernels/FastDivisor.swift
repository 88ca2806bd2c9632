/// A divisor for `fastDivide` in `Shaders/common.glsl`: q = ⌊r·m / 2^(31+s)⌋ equals ⌊r / d⌋ for
/// every r < 2^31, with s = ⌈log₂ d⌉ and m = ⌊2^(31+s) / d⌋ + 1 (which fits 32 bits). Why: the error
/// e = m·d − 2^(31+s) lies in (0, d], so r·m / 2^(31+s) = r/d + r·e / (d·2^(31+s)), and the second
/// term is below r / 2^(31+s) < 2^−s ≤ 1/d, too little to carry ⌊r/d⌋ over to the next integer.
struct FastDivisor: Equatable {
    let divisor: Int, magic: Int, shift: Int

    init(_ d: Int) {
        precondition(d >= 1 && d < 1 << 31, "divisor \(d) out of range")
        var s = 0
        while (1 << s) < d { s += 1 }
        divisor = d
        shift = s
        magic = Int((UInt64(1) << UInt64(31 + s)) / UInt64(d) + 1)
    }

    /// What the shader computes (for the test of the identity).
    func divide(_ r: UInt32) -> UInt32 {
        let product = UInt64(r) * UInt64(magic)
        return UInt32(truncatingIfNeeded: product >> UInt64(31 + shift))
    }

    /// Up to six shifts (5 bits each) packed into one push-constant word.
    static func packShifts(_ divisors: [FastDivisor]) -> Int {
        precondition(divisors.count <= 6)
        return divisors.enumerated().reduce(0) { $0 | ($1.element.shift << (5 * $1.offset)) }
    }
}

/// The largest element count an index-decomposing kernel accepts (`fastDivide` needs r < 2^31).
let fastDivideLimit = 1 << 31
