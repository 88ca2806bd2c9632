import Foundation
import Testing

// The loops below index buffer pointers on purpose: the tests run a debug build, where `zip`,
// `map`/`reduce` and key paths cost generic-metadata lookups per element — tens of seconds a step
// over the goldens' millions of values.

/// ‖got − want‖ / ‖want‖ (absolute when want is all zeros); a non-finite value where the reference
/// is finite gives ∞.
public func relativeError(_ got: [Float], _ want: [Double]) -> Double {
    guard got.count == want.count else { return .infinity }
    var num = 0.0, den = 0.0
    let infinite = got.withUnsafeBufferPointer { g in
        want.withUnsafeBufferPointer { w in
            var i = 0
            while i < g.count {
                if !g[i].isFinite && w[i].isFinite { return true }
                let d = Double(g[i]) - w[i]
                num += d * d; den += w[i] * w[i]
                i += 1
            }
            return false
        }
    }
    if infinite { return .infinity }
    return den > 0 ? (num / den).squareRoot() : num.squareRoot()
}

public func relativeError(_ got: [Float], _ want: [Float]) -> Double { relativeError(got, doubles(want)) }
public func relativeError(_ got: [Double], _ want: [Double]) -> Double { relativeError(got.map { Float($0) }, want) }

/// `v` widened to Double (an index loop: `map` is generic, slow in a debug build).
public func doubles(_ v: [Float]) -> [Double] {
    [Double](unsafeUninitializedCapacity: v.count) { out, n in
        v.withUnsafeBufferPointer { p in
            var i = 0
            while i < p.count { out[i] = Double(p[i]); i += 1 }
        }
        n = v.count
    }
}

/// Euclidean norm.
public func norm(_ v: [Float]) -> Double {
    v.withUnsafeBufferPointer { p in
        var s = 0.0, i = 0
        while i < p.count { s += Double(p[i]) * Double(p[i]); i += 1 }
        return s.squareRoot()
    }
}
public func norm(_ v: [Double]) -> Double {
    v.withUnsafeBufferPointer { p in
        var s = 0.0, i = 0
        while i < p.count { s += p[i] * p[i]; i += 1 }
        return s.squareRoot()
    }
}

/// max |v| (0 for an empty array).
public func maxAbs(_ v: [Float]) -> Double {
    v.withUnsafeBufferPointer { p in
        var m: Float = 0, i = 0
        while i < p.count { m = max(m, abs(p[i])); i += 1 }
        return Double(m)
    }
}

/// ‖a − b‖ in Double; ∞ where `a` holds a non-finite value. (Equal counts.)
public func distance(_ a: [Float], _ b: [Float]) -> Double {
    precondition(a.count == b.count)
    return a.withUnsafeBufferPointer { a in
        b.withUnsafeBufferPointer { b in
            var s = 0.0, i = 0
            while i < a.count {
                guard a[i].isFinite else { return .infinity }
                let d = Double(a[i]) - Double(b[i]); s += d * d; i += 1
            }
            return s.squareRoot()
        }
    }
}

/// fp32 results: rounding of O(K) accumulations lands near 1e-6 relative; 1e-5 leaves headroom.
public let fp32Tolerance = 1e-5
/// fp16 storage: inputs/outputs rounded to 11-bit mantissas (2^-11 ≈ 4.9e-4 per element).
public let fp16Tolerance = 2e-3

/// Deterministic uniform values in [lo, hi).
public func randomValues(_ n: Int, seed: UInt64, lo: Double = -1, hi: Double = 1) -> [Double] {
    var s = seed &* 0x9E37_79B9_7F4A_7C15 &+ 0x632B_E59B_D9B4_E019
    return (0..<n).map { _ in
        s ^= s << 13; s ^= s >> 7; s ^= s << 17
        return lo + (hi - lo) * Double(s >> 11) / Double(1 << 53)
    }
}

/// Central finite differences of a scalar function f(x) in Double.
public func finiteDifference(_ x: [Double], h: Double = 1e-6, _ f: ([Double]) -> Double) -> [Double] {
    var x = x
    return (0..<x.count).map { i in
        let old = x[i]
        x[i] = old + h; let fp = f(x)
        x[i] = old - h; let fm = f(x)
        x[i] = old
        return (fp - fm) / (2 * h)
    }
}

public func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).map(*).reduce(0, +) }

/// A small deterministic generator for the fuzzers: SplitMix64 from seed · 0x9E3779B97F4A7C15
/// (the augmentation's stream at epoch 0, index 0, so the fuzz cases stay what they were).
public struct FuzzRNG {
    var state: UInt64
    public init(state: UInt64) { self.state = state &* 0x9E37_79B9_7F4A_7C15 }
    public mutating func next() -> UInt64 {
        defer { state &+= 0x9E37_79B9_7F4A_7C15 }
        return FormulaValues.splitmix64(state)   // mixes state + the increment: the stream's next value
    }
    public mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(n, 1))) }
    public mutating func pick<T>(_ a: [T]) -> T { a[below(a.count)] }
}

/// Checks a reference backward against central differences of the reference forward:
/// for L(x) = Σ dy ⊙ f(x), dL/dx must equal the backward's dx.
public func expectGradientMatchesFiniteDifference(_ x: [Double], dy: [Double], forward: ([Double]) -> [Double], backward: [Double],
                                                  _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    let fd = finiteDifference(x) { dot(dy, forward($0)) }
    // Central differences with h = 1e-6 in Double: truncation O(h²) ~ 1e-12, cancellation ~ 1e-10.
    let err = relativeError(backward, fd)
    #expect(err <= 1e-6, "\(what): backward vs finite differences: relative error \(err)", sourceLocation: sourceLocation)
}
