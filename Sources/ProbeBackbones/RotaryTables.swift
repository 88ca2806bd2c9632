import Foundation

/// The (P, hd) cosine and sine tables of a 2-D rotary embedding for a grid of gh × gw patches,
/// row-major over the patches, in the layout the RoPE kernel reads (pairs (2j, 2j+1) or
/// (j, j + hd/2)). Computed in f32 step for step as timm's `pos_embed_sincos.py` does, so the
/// angles round as PyTorch's do; sine and cosine of each f32 angle in Double, rounded once.
public enum RotaryTables {
    /// `rescale`: DINOv3's train-mode coordinate factor (`TrainModeNoise`), 1 in eval mode.
    public static func tables(_ spec: RoPESpec, headDim hd: Int, gridH gh: Int, gridW gw: Int, rescale: Float = 1) -> (cos: [Float], sin: [Float]) {
        let nb = hd / 4
        // Per patch (row-major), the hd/2 angles: the first coordinate channel's nb bands, then the second's.
        var angles = [Float](repeating: 0, count: gh * gw * 2 * nb)
        switch spec.kind {
        case .eva:
            // freq_bands(nb, temperature, step=1): 1 / temperature^(j / nb).
            let bands = (0..<nb).map { j -> Float in 1 / Float(pow(spec.temperature, Double(Float(j) / Float(nb)))) }
            // _build_grid('index'): arange(s) + offset, rescaled to the reference grid as t / s · r;
            // 'xy' swaps the axes (channel 0 is then the column).
            func axis(_ s: Int, _ ref: Int?) -> [Float] {
                (0..<s).map { i in
                    let t = Float(i) + Float(spec.gridOffset)
                    guard let ref else { return t }
                    return t / Float(s) * Float(ref)
                }
            }
            // Each axis keeps its own reference size whatever the channel order ('xy' swaps shape and reference together).
            let ref = spec.refGrid
            let rows = axis(gh, ref.map { $0[0] }), cols = axis(gw, ref.map { $0[1] })
            for r in 0..<gh {
                for c in 0..<gw {
                    let (c0, c1) = spec.xy ? (cols[c], rows[r]) : (rows[r], cols[c])
                    let base = (r * gw + c) * 2 * nb
                    for j in 0..<nb { angles[base + j] = c0 * bands[j]; angles[base + nb + j] = c1 * bands[j] }
                }
            }
        case .dinov3:
            // periods = temperature^(2j / (hd/2)); coordinates (i + 0.5 + offset) / s mapped to [−1, 1];
            // angle = 2π · coordinate / period.
            let periods = (0..<nb).map { j -> Float in
                let p = Float(pow(spec.temperature, Double(Float(2 * j) / Float(hd / 2))))
                return spec.bf16Periods ? bf16(p) : p
            }
            func axis(_ s: Int) -> [Float] { (0..<s).map { i in (2 * ((Float(i) + 0.5 + Float(spec.gridOffset)) / Float(s)) - 1) * rescale } }
            let rows = axis(gh), cols = axis(gw)
            let twoPi = Float(2 * Double.pi)
            for r in 0..<gh {
                for c in 0..<gw {
                    let (c0, c1) = spec.xy ? (cols[c], rows[r]) : (rows[r], cols[c])
                    let base = (r * gw + c) * 2 * nb
                    for j in 0..<nb { angles[base + j] = twoPi * c0 / periods[j]; angles[base + nb + j] = twoPi * c1 / periods[j] }
                }
            }
        }
        // Expand hd/2 angles to hd: interleaved [a0, a0, a1, a1, …] or half [a0 … a_{hd/2−1}, a0 …].
        let half = hd / 2
        var cosT = [Float](repeating: 0, count: gh * gw * hd), sinT = cosT
        for p in 0..<(gh * gw) {
            for d in 0..<hd {
                let a = Double(angles[p * half + (spec.half ? d % half : d / 2)])
                cosT[p * hd + d] = Float(Foundation.cos(a)); sinT[p * hd + d] = Float(Foundation.sin(a))
            }
        }
        return (cosT, sinT)
    }

    /// x rounded to bfloat16 (nearest, ties to even), as PyTorch's `.to(torch.bfloat16)`.
    static func bf16(_ x: Float) -> Float {
        let bits = x.bitPattern
        return Float(bitPattern: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) & 0xFFFF_0000)
    }
}

/// BEiT's relative position bias for a window of g × g patches and one [CLS] token: the
/// (H, N, N) bias, N = g² + 1, gathered from a block's ((2g−1)² + 3, H) table by timm's
/// `gen_relative_position_index` (patch pairs by their offset; the last three rows for
/// [CLS]→patch, patch→[CLS] and [CLS]→[CLS]).
public enum RelativePositionBias {
    public static func bias(table: [Float], heads: Int, grid g: Int) -> [Float] {
        let n = g * g + 1, distances = (2 * g - 1) * (2 * g - 1) + 3
        var out = [Float](repeating: 0, count: heads * n * n)
        for i in 0..<n {
            for j in 0..<n {
                let index: Int
                if i == 0 && j == 0 { index = distances - 1 }
                else if i == 0 { index = distances - 3 }
                else if j == 0 { index = distances - 2 }
                else {
                    let (ri, ci) = ((i - 1) / g, (i - 1) % g), (rj, cj) = ((j - 1) / g, (j - 1) % g)
                    index = (ri - rj + g - 1) * (2 * g - 1) + (ci - cj + g - 1)
                }
                for h in 0..<heads { out[(h * n + i) * n + j] = table[index * heads + h] }
            }
        }
        return out
    }
}
