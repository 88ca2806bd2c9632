import Foundation

/// How a position-embedding table is resized to another grid.
public enum PosEmbedResize: String, Codable, Sendable, CaseIterable {
    /// timm's `resample_abs_pos_embed`: bicubic, antialiased, to the exact size.
    case antialias
    /// PyTorch's plain bicubic to the exact size (`antialias=False`; Hugging Face's DINOv2).
    case bicubic
    /// The hub DINOv2's `interpolate_pos_encoding`: plain bicubic with `scale_factor` =
    /// (grid + 0.1) / M, so sample positions come from that scale rather than M / grid.
    case hubOffset = "hub-offset"
}

/// Resizes a position-embedding grid as PyTorch's `F.interpolate(mode="bicubic",
/// align_corners=False)` does, separably over rows then columns, in Double:
/// - `antialias: false` (PyTorch's default): cubic convolution with a = −0.75 on the four
///   nearest source samples, borders replicated;
/// - `antialias: true` (timm's `resample_abs_pos_embed`): PIL's filter, cubic with a = −0.5 whose
///   support widens by the reduction factor when shrinking, weights normalised, no samples from
///   outside the grid.
public enum PosEmbedResample {
    static func cubic(_ x: Double, a: Double) -> Double {
        let x = abs(x)
        if x <= 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
        if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
        return 0
    }

    /// Weights of each output position over the input positions: (first input index, weights).
    static func weights(input n: Int, output m: Int, antialias: Bool, offset: Double = 0) -> [(Int, [Double])] {
        // With a `scale_factor`, PyTorch maps output to input coordinates by 1 / scale_factor.
        let scale = Double(n) / (Double(m) + offset)
        return (0..<m).map { i -> (Int, [Double]) in
            if antialias {
                let support = 2 * max(scale, 1), invScale = 1 / max(scale, 1)
                let center = scale * (Double(i) + 0.5)
                let lo = max(Int((center - support + 0.5).rounded(.down)), 0), hi = min(Int((center + support + 0.5).rounded(.down)), n)
                var w = (lo..<max(hi, lo)).map { cubic((Double($0) - center + 0.5) * invScale, a: -0.5) }
                let total = w.reduce(0, +)
                if total != 0 { w = w.map { $0 / total } }
                return (lo, w)
            }
            let src = (Double(i) + 0.5) * scale - 0.5
            let x0 = Int(src.rounded(.down)), t = src - Double(x0)
            var w = [Double](repeating: 0, count: n)
            for (k, d) in [(-1, t + 1), (0, t), (1, 1 - t), (2, 2 - t)] {
                w[min(max(x0 + k, 0), n - 1)] += cubic(d, a: -0.75)
            }
            return (0, w)
        }
    }

    /// `grid` (h, w, D) row-major → (newH, newW, D).
    public static func resize(_ grid: [Float], h: Int, w: Int, dim: Int, toH newH: Int, toW newW: Int, antialias: Bool) -> [Float] {
        resize(grid, h: h, w: w, dim: dim, toH: newH, toW: newW, method: antialias ? .antialias : .bicubic)
    }

    public static func resize(_ grid: [Float], h: Int, w: Int, dim: Int, toH newH: Int, toW newW: Int, method: PosEmbedResize) -> [Float] {
        // The hub's DINOv2 returns its table untouched for a square image of the trained grid.
        if h == newH && w == newW { return grid }
        let antialias = method == .antialias, offset = method == .hubOffset ? 0.1 : 0
        let rowW = weights(input: h, output: newH, antialias: antialias, offset: offset)
        let colW = weights(input: w, output: newW, antialias: antialias, offset: offset)
        // Columns first (each input row), then rows.
        var tmp = [Double](repeating: 0, count: h * newW * dim)
        for r in 0..<h {
            for (j, (start, ws)) in colW.enumerated() {
                for (k, wk) in ws.enumerated() where wk != 0 {
                    let src = (r * w + start + k) * dim, dst = (r * newW + j) * dim
                    for d in 0..<dim { tmp[dst + d] += wk * Double(grid[src + d]) }
                }
            }
        }
        var out = [Double](repeating: 0, count: newH * newW * dim)
        for (i, (start, ws)) in rowW.enumerated() {
            for (k, wk) in ws.enumerated() where wk != 0 {
                for j in 0..<newW {
                    let src = ((start + k) * newW + j) * dim, dst = (i * newW + j) * dim
                    for d in 0..<dim { out[dst + d] += wk * tmp[src + d] }
                }
            }
        }
        return out.map { Float($0) }
    }
}
