import Foundation
import ProbeAutodiff
import ProbeData
import ProbeHeads
import ProbeKernels
import SafeTensors

/// A trained EP head read back from a checkpoint for its attention maps: A (B, Q, N), the softmax
/// over patches of each learned query against the tokens, computed by the head's own forward.
public final class EPMapsModel {
    public let state: ProbeHeadState<GPUBackend>
    public let queries: Int
    public let dim: Int
    public let classes: Int
    let gpu: GPUBackend

    /// Reads `checkpoint` (a `checkpoint-best.safetensors` of an `ep` head); Q, D and the class
    /// count come from its tensors' shapes.
    public init(checkpoint: String, ctx: KernelContext) throws {
        let file = try SafeTensorsFile(path: checkpoint)
        guard let q = file.entries["0.cls_token"], q.shape.count == 3, q.shape[0] == 1 else {
            throw TrainingError("\(checkpoint): no EP queries `0.cls_token` (1, Q, D); attention maps are drawn for ep heads")
        }
        guard let w = file.entries["2.weight"], w.shape.count == 2, w.shape[1] == q.shape[2] else {
            throw TrainingError("\(checkpoint): no classifier `2.weight` (C, \(q.shape[2]))")
        }
        queries = q.shape[1]; dim = q.shape[2]; classes = w.shape[0]
        gpu = GPUBackend(ctx)
        let options = HeadOptions(dim: dim, tokens: 1, queries: queries, heads: 1, classes: classes)
        let layout = ProbeHeadLayout(pooling: try EfficientProbing(options), classes: classes)
        state = try ProbeHeadState(layout: layout, backend: gpu, file: file)
    }

    /// The learned queries (Q, D).
    public func queryVectors() throws -> [Float] { try gpu.ctx.read(state["0.cls_token"]!) }

    /// Attention (B, Q, N) and predicted classes for patch tokens (B, N, D).
    public func attention(_ tokens: Tensor) throws -> (maps: [Float], predicted: [Int]) {
        guard tokens.rank == 3, tokens.shape[2] == dim else { throw TrainingError("tokens \(tokens): expected (B, N, \(dim))") }
        let g = Graph(gpu, training: false)
        let out = try state.forward(g, tokens: g.input(tokens))
        guard let a = out.attention else { throw TrainingError("the ep head returned no attention") }
        let logits = try gpu.ctx.read(out.logits.value)
        let C = classes
        let predicted = (0..<tokens.shape[0]).map { b in (0..<C).max { logits[b * C + $0] < logits[b * C + $1] }! }
        return (try gpu.ctx.read(a), predicted)
    }
}

/// Groups of queries by spherical (cosine) k-means: deterministic farthest-point seeding from
/// query 0, then alternating assignment by largest cosine and re-normalised means.
public func cosineKMeans(_ vectors: [Float], count: Int, dim: Int, groups k: Int, iterations: Int = 50) -> [Int] {
    let k = max(1, min(k, count))
    let unit: [[Double]] = (0..<count).map { i in
        let v = (0..<dim).map { Double(vectors[i * dim + $0]) }
        let n = max(v.map { $0 * $0 }.reduce(0, +).squareRoot(), 1e-12)
        return v.map { $0 / n }
    }
    func cos(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).map(*).reduce(0, +) }
    var centers = [unit[0]]
    while centers.count < k {
        let far = (0..<count).min { a, b in centers.map { cos(unit[a], $0) }.max()! < centers.map { cos(unit[b], $0) }.max()! }!
        centers.append(unit[far])
    }
    var assign = [Int](repeating: 0, count: count)
    for _ in 0..<iterations {
        let next = unit.map { u in (0..<k).max { cos(u, centers[$0]) < cos(u, centers[$1]) }! }
        for c in 0..<k {
            let members = (0..<count).filter { next[$0] == c }
            guard !members.isEmpty else { continue }
            var m = [Double](repeating: 0, count: dim)
            for i in members { for d in 0..<dim { m[d] += unit[i][d] } }
            let n = max(m.map { $0 * $0 }.reduce(0, +).squareRoot(), 1e-12)
            centers[c] = m.map { $0 / n }
        }
        if next == assign { break }
        assign = next
    }
    return assign
}

/// Upstream's figure of EP's maps: the image in dimmed greyscale; each patch coloured by the group
/// of queries that attends to it most, with strength from that group's map (at each patch the
/// largest of its queries' attention), each group's map stretched to [0, 1] between its least and
/// most attended patch on the image (the maps show where, not how sharply: `focus` says that);
/// upsampled bilinearly to the pixels.
public enum AttentionFigure {
    /// Distinct colours (Okabe–Ito, then a few more).
    public static let palette: [[Double]] = [[230, 159, 0], [86, 180, 233], [0, 158, 115], [240, 228, 66], [0, 114, 178],
                                             [213, 94, 0], [204, 121, 167], [255, 255, 255], [120, 200, 80], [200, 60, 60]]

    public static func overlay(_ image: RGBImage, maps: ArraySlice<Float>, queries Q: Int, gridH gh: Int, gridW gw: Int,
                               groups: [Int], strength alpha: Double = 0.85) -> RGBImage {
        let N = gh * gw, k = (groups.max() ?? 0) + 1
        let base = maps.startIndex
        var group = [[Double]](repeating: [Double](repeating: 0, count: N), count: k)
        for q in 0..<Q { for n in 0..<N { group[groups[q]][n] = max(group[groups[q]][n], Double(maps[base + q * N + n])) } }
        for g in 0..<k {
            let lo = group[g].min() ?? 0, hi = group[g].max() ?? 0
            group[g] = group[g].map { hi > lo ? ($0 - lo) / (hi - lo) : 0 }
        }
        let (W, H) = (image.width, image.height)
        var out = [UInt8](repeating: 0, count: W * H * 3)
        for y in 0..<H {
            // Bilinear, align_corners=False: pixel centre → grid coordinate.
            let gy = max(0, min(Double(gh - 1), (Double(y) + 0.5) * Double(gh) / Double(H) - 0.5))
            let y0 = Int(gy), y1 = min(y0 + 1, gh - 1), fy = gy - Double(y0)
            for x in 0..<W {
                let gx = max(0, min(Double(gw - 1), (Double(x) + 0.5) * Double(gw) / Double(W) - 0.5))
                let x0 = Int(gx), x1 = min(x0 + 1, gw - 1), fx = gx - Double(x0)
                var best = 0, s = -1.0
                for g in 0..<k {
                    let m = group[g]
                    let v = (m[y0 * gw + x0] * (1 - fx) + m[y0 * gw + x1] * fx) * (1 - fy) + (m[y1 * gw + x0] * (1 - fx) + m[y1 * gw + x1] * fx) * fy
                    if v > s { s = v; best = g }
                }
                let i = (y * W + x) * 3
                let grey = 0.299 * Double(image.pixels[i]) + 0.587 * Double(image.pixels[i + 1]) + 0.114 * Double(image.pixels[i + 2])
                let dim = 0.4 * grey
                let a = alpha * pow(max(0, min(1, s)), 2)   // squared: the most attended patches stand out
                let color = palette[best % palette.count]
                for c in 0..<3 { out[i + c] = UInt8(max(0, min(255, (dim * (1 - a) + color[c] * a).rounded()))) }
            }
        }
        return RGBImage(width: W, height: H, pixels: out)
    }

    /// How sharply the queries attend: the median over queries and images of the largest
    /// attention weight times N (1 = uniform over the N patches).
    public static func focus(_ maps: [Float], queries Q: Int, patches N: Int) -> Double {
        let peaks = stride(from: 0, to: maps.count, by: N).map { Double(maps[$0..<($0 + N)].max() ?? 0) * Double(N) }.sorted()
        return peaks.isEmpty ? 0 : peaks[peaks.count / 2]
    }

    /// Tiles (each row: image, overlay, image, overlay, …) on a white sheet with 4-px gaps.
    public static func contactSheet(_ rows: [[RGBImage]], gap: Int = 4) -> RGBImage {
        let cols = rows.map(\.count).max() ?? 0
        let tw = rows.flatMap { $0 }.map(\.width).max() ?? 1, th = rows.flatMap { $0 }.map(\.height).max() ?? 1
        let W = cols * tw + (cols + 1) * gap, H = rows.count * th + (rows.count + 1) * gap
        var px = [UInt8](repeating: 255, count: max(W * H * 3, 3))
        for (r, row) in rows.enumerated() {
            for (c, tile) in row.enumerated() {
                let ox = gap + c * (tw + gap), oy = gap + r * (th + gap)
                for y in 0..<tile.height {
                    let dst = ((oy + y) * W + ox) * 3
                    px.replaceSubrange(dst..<(dst + tile.width * 3), with: tile.pixels[(y * tile.width * 3)..<((y + 1) * tile.width * 3)])
                }
            }
        }
        return RGBImage(width: max(W, 1), height: max(H, 1), pixels: px)
    }
}
