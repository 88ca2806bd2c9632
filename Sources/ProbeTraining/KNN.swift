import Foundation
import ProbeData
import ProbeKernels

/// One k-NN setting's accuracy (percent).
public struct KNNResult: Codable, Sendable, Equatable {
    public var k: Int
    public var T: Double
    public var top1: Double
    public var top5: Double
}

/// Upstream's `--knn_eval` (DINO's weighted k-NN): features L2-normalised (F.normalize, eps
/// 1e-12), cosine similarities of each validation feature with the whole training bank, the k
/// largest, votes exp(s/T) summed per class, classes ranked by their sum (ties: smaller class
/// first). Similarities and the top-k run on the device; the bank is held in chunks that each fit
/// a binding, each chunk's top-k merged by a second top-k. One extraction serves every k and T.
public final class KNNClassifier {
    let ctx: KernelContext
    public let classes: Int
    let labels: [Int32]
    let dim: Int
    /// Normalised bank chunks (rows, D) and their first row.
    var chunks: [(start: Int, tensor: Tensor)] = []
    public var samples: Int { labels.count }
    /// Test rows per similarity block.
    public var testBlock = 256

    /// `features` (S, D) of the training split.
    public init(ctx: KernelContext, features: [Float], labels: [Int32], dim: Int, classes: Int, maxChunkRows: Int? = nil) throws {
        guard dim > 0, features.count == labels.count * dim, !labels.isEmpty else {
            throw TrainingError("k-NN bank: \(features.count) values for \(labels.count) samples of width \(dim)")
        }
        guard classes > 0, labels.allSatisfy({ $0 >= 0 && Int($0) < classes }) else { throw TrainingError("k-NN bank: labels outside [0, \(classes))") }
        self.ctx = ctx; self.labels = labels; self.dim = dim; self.classes = classes
        // A chunk and its similarity block against `testBlock` rows must each fit one binding.
        let limit = ctx.device.capabilities.maxStorageBufferRange - ctx.device.capabilities.minStorageBufferOffsetAlignment
        var rows = min(limit / (dim * 4), limit / (testBlock * 4), labels.count)
        if let maxChunkRows { rows = min(rows, maxChunkRows) }
        guard rows >= 1 else { throw TrainingError("k-NN: one feature of width \(dim) does not fit a binding of \(limit) bytes") }
        for start in stride(from: 0, to: labels.count, by: rows) {
            let n = min(rows, labels.count - start)
            let raw = try ctx.tensor(Array(features[(start * dim)..<((start + n) * dim)]), [n, dim])
            chunks.append((start, try ctx.l2Normalize(raw, eps: 1e-12)))
        }
        try ctx.finish()
    }

    public var chunkCount: Int { chunks.count }

    /// Top-1/top-5 for every (k, T) on `features` (Q, D) with `labels`.
    public func evaluate(features: [Float], labels testLabels: [Int32], ks: [Int], temperatures: [Double]) throws -> [KNNResult] {
        guard features.count == testLabels.count * dim else { throw TrainingError("k-NN queries: \(features.count) values for \(testLabels.count) samples of width \(dim)") }
        guard let kmax = ks.max(), ks.allSatisfy({ $0 >= 1 }), kmax <= min(256, samples) else {
            throw TrainingError("k-NN: k must lie in 1…\(min(256, samples)) (the training bank has \(samples) samples)")
        }
        guard temperatures.allSatisfy({ $0 > 0 && $0.isFinite }) else { throw TrainingError("k-NN: temperatures must be positive") }
        var top1 = [[Int]](repeating: [Int](repeating: 0, count: temperatures.count), count: ks.count)
        var top5 = top1
        for q0 in stride(from: 0, to: testLabels.count, by: testBlock) {
            let Bt = min(testBlock, testLabels.count - q0)
            let test = try ctx.l2Normalize(try ctx.tensor(Array(features[(q0 * dim)..<((q0 + Bt) * dim)]), [Bt, dim]), eps: 1e-12)
            let perChunk = chunks.map { min(kmax, $0.tensor.shape[0]) }
            let width = perChunk.reduce(0, +)
            let candV = try ctx.empty([Bt, width]), candI = try ctx.empty([Bt, width], dtype: .i32)
            var col = 0
            for (c, kc) in zip(chunks, perChunk) {
                let sims = try ctx.matmul(test, c.tensor, transB: true)
                try ctx.topK(sims, k: kc, indexBase: c.start, into: try candV.slice(axis: 1, col..<(col + kc)),
                             outIndices: try candI.slice(axis: 1, col..<(col + kc)))
                col += kc
            }
            var (vals, idx) = (candV, candI)
            if chunks.count > 1 {
                vals = try ctx.empty([Bt, kmax]); idx = try ctx.empty([Bt, kmax], dtype: .i32)
                try ctx.topK(candV, indices: candI, k: kmax, into: vals, outIndices: idx)
            }
            let v = try ctx.read(vals), ix = try ctx.readInt32(idx)
            for r in 0..<Bt {
                let target = Int(testLabels[q0 + r])
                for (ti, T) in temperatures.enumerated() {
                    // exp(s/T) in f32 as upstream; votes summed in neighbour order.
                    let weights = (0..<kmax).map { expf(v[r * kmax + $0] / Float(T)) }
                    for (ki, k) in ks.enumerated() {
                        var score = [Float](repeating: 0, count: classes)
                        for j in 0..<k { score[Int(labels[Int(ix[r * kmax + j])])] += weights[j] }
                        let ranked = (0..<classes).sorted { score[$0] > score[$1] || (score[$0] == score[$1] && $0 < $1) }
                        if ranked[0] == target { top1[ki][ti] += 1 }
                        if ranked.prefix(5).contains(target) { top5[ki][ti] += 1 }
                    }
                }
            }
        }
        let n = Double(testLabels.count)
        var out: [KNNResult] = []
        for (ti, T) in temperatures.enumerated() {
            for (ki, k) in ks.enumerated() {
                out.append(KNNResult(k: k, T: T, top1: 100 * Double(top1[ki][ti]) / n, top5: 100 * Double(top5[ki][ti]) / n))
            }
        }
        return out
    }

    /// Upstream's `final_norm` variant: each feature L2-normalised, then through the encoder's
    /// final LayerNorm (its weight and bias, in Double), then compared as before (the bank
    /// normalises again). Upstream reports it beside `raw` where the model has a final norm as
    /// wide as the features.
    public static func finalNorm(_ features: [Float], dim: Int, weight: [Float], bias: [Float], eps: Double) throws -> [Float] {
        guard weight.count == dim, bias.count == dim else {
            throw TrainingError("k-NN final_norm: the norm is \(weight.count) wide, the features \(dim) (upstream reports raw only then)")
        }
        var out = [Float](repeating: 0, count: features.count)
        for r in 0..<(features.count / dim) {
            let row = features[(r * dim)..<((r + 1) * dim)].map(Double.init)
            let l2 = max(row.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
            let x = row.map { $0 / l2 }
            let mean = x.reduce(0, +) / Double(dim)
            let variance = x.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(dim)
            let inv = 1 / (variance + eps).squareRoot()
            for d in 0..<dim { out[r * dim + d] = Float((x[d] - mean) * inv * Double(weight[d]) + Double(bias[d])) }
        }
        return out
    }

    /// One feature per sample from a token set: the [CLS] token, or the mean of the patch tokens
    /// (upstream's `pos`), as k-NN reads the linear probe's representation.
    public static func features(_ ds: TokenDataset, kind: String, ctx: KernelContext) throws -> [Float] {
        switch kind {
        case "cls":
            guard ds.hasCLS else { throw TrainingError("\(ds.path) has no `cls` tensor; use --features gap (the mean of the patch tokens)") }
            return try ds.gatherCLS(Array(0..<ds.samples))
        case "gap":
            var out: [Float] = []
            out.reserveCapacity(ds.samples * ds.dim)
            for s in stride(from: 0, to: ds.samples, by: 256) {
                let idx = Array(s..<min(s + 256, ds.samples))
                let t = try ctx.tensor(try ds.gatherTokens(idx), [idx.count, ds.tokens, ds.dim])
                out += try ctx.read(try ctx.reduce(t, axis: 1, .mean).values)
            }
            return out
        default: throw TrainingError("--features \(kind): cls or gap")
        }
    }
}
