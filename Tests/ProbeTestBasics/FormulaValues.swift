import Foundation

/// The values a golden generator and a test both compute instead of storing them
/// (`Bench/tools/make_finetune_goldens.py`): value(name, i) = offset + scale · u, with
/// u = (splitmix64(fnv1a64(name) ^ i) >> 40) / 2²³ − 1 in [−1, 1), exact in f32; the same
/// operations in the same order as NumPy's float32, so both sides hold the same bits.
public enum FormulaValues {
    static func fnv1a64(_ s: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        return h
    }

    public static func splitmix64(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public static func values(_ name: String, count: Int, offset: Double, scale: Double) -> [Float] {
        let h = fnv1a64(name), o = Float(offset), s = Float(scale)
        return (0..<count).map { i in
            let u = Float(splitmix64(h ^ UInt64(i)) >> 40) / Float(1 << 23) - 1
            let scaled = s * u
            return o + scaled
        }
    }
}
