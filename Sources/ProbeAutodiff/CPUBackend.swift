import Foundation
import ProbeOps

/// A dense row-major tensor in Double.
public final class HostTensor {
    public var shape: [Int]
    public var data: [Double]
    public init(_ data: [Double], _ shape: [Int]) { self.data = data; self.shape = shape }
    public var count: Int { data.count }
}

/// The CPU reference backend: every op in Double, contiguous tensors. Slow; for gradient checks
/// and as the oracle of the GPU backend.
public final class CPUBackend: Backend {
    public typealias Value = HostTensor
    public typealias ArgMax = [Int]
    public init() {}

    public func shape(_ x: HostTensor) -> [Int] { x.shape }
    public func constant(_ values: [Float], _ shape: [Int]) throws -> HostTensor { HostTensor(values.map(Double.init), shape) }
    public func zeros(_ shape: [Int]) throws -> HostTensor { HostTensor([Double](repeating: 0, count: shape.reduce(1, *)), shape) }
    public func toHost(_ x: HostTensor) throws -> [Float] { x.data.map { Float($0) } }
    func strides(_ s: [Int]) -> [Int] { contiguousStrides(s) }

    public func reshape(_ x: HostTensor, _ shape: [Int]) throws -> HostTensor {
        var shape = shape
        if let i = shape.firstIndex(of: -1) { shape[i] = x.count / max(1, shape.filter { $0 != -1 }.reduce(1, *)) }
        guard shape.reduce(1, *) == x.count else { throw OpError.shape("reshape", "\(x.shape) → \(shape)") }
        return HostTensor(x.data, shape)
    }

    /// Gathers `x` through arbitrary strides into a new contiguous tensor of `shape`.
    func gather(_ x: HostTensor, shape: [Int], strides st: [Int], offset: Int = 0) -> HostTensor {
        let n = shape.reduce(1, *)
        var out = [Double](repeating: 0, count: n)
        var index = [Int](repeating: 0, count: shape.count)
        for i in 0..<n {
            out[i] = x.data[offset + zip(index, st).map(*).reduce(0, +)]
            var d = shape.count - 1
            while d >= 0 { index[d] += 1; if index[d] < shape[d] { break }; index[d] = 0; d -= 1 }
        }
        return HostTensor(out, shape)
    }

    public func permute(_ x: HostTensor, _ order: [Int]) throws -> HostTensor {
        let st = strides(x.shape)
        return gather(x, shape: order.map { x.shape[$0] }, strides: order.map { st[$0] })
    }

    public func slice(_ x: HostTensor, axis: Int, _ range: Range<Int>) throws -> HostTensor {
        var s = x.shape; s[axis] = range.count
        let st = strides(x.shape)
        return gather(x, shape: s, strides: st, offset: range.lowerBound * st[axis])
    }

    public func concat(_ parts: [HostTensor], axis: Int) throws -> HostTensor {
        var shape = parts[0].shape
        shape[axis] = parts.map { $0.shape[axis] }.reduce(0, +)
        let outer = shape[..<axis].reduce(1, *), inner = shape[(axis + 1)...].reduce(1, *)
        var out: [Double] = []
        out.reserveCapacity(shape.reduce(1, *))
        for o in 0..<outer { for p in parts { let w = p.shape[axis] * inner; out += p.data[(o * w)..<((o + 1) * w)] } }
        return HostTensor(out, shape)
    }

    public func expand(_ x: HostTensor, _ shape: [Int]) throws -> HostTensor {
        let padded = Array(repeating: 1, count: shape.count - x.shape.count) + x.shape
        let st = strides(padded)
        return gather(x, shape: shape, strides: zip(padded, st).map { $0 == 1 ? 0 : $1 })
    }

    public func padSlice(_ x: HostTensor, shape: [Int], axis: Int, _ range: Range<Int>) throws -> HostTensor {
        let parts = [try zeros({ var s = shape; s[axis] = range.lowerBound; return s }()), x,
                     try zeros({ var s = shape; s[axis] = shape[axis] - range.upperBound; return s }())]
        return try concat(parts.filter { $0.count > 0 || $0 === x }, axis: axis)
    }

    public func addSlice(_ target: HostTensor, _ x: HostTensor, axis: Int, _ range: Range<Int>) throws -> HostTensor {
        try binary(target, try padSlice(x, shape: target.shape, axis: axis, range), .add)
    }

    public func matmul(_ a: HostTensor, _ b: HostTensor, transA: Bool, transB: Bool, alpha: Float) throws -> HostTensor {
        let ra = a.shape.count, rb = b.shape.count
        let batchDims = ra > 2 ? Array(a.shape.prefix(ra - 2)) : Array(b.shape.prefix(rb - 2))
        let batch = batchDims.reduce(1, *)
        let (M, K) = transA ? (a.shape[ra - 1], a.shape[ra - 2]) : (a.shape[ra - 2], a.shape[ra - 1])
        let N = transB ? b.shape[rb - 2] : b.shape[rb - 1]
        var out = [Double](repeating: 0, count: batch * M * N)
        let sa = ra > 2 ? M * K : 0, sb = rb > 2 ? K * N : 0
        for z in 0..<batch {
            for i in 0..<M { for j in 0..<N {
                var s = 0.0
                for k in 0..<K {
                    let av = transA ? a.data[z * sa + k * M + i] : a.data[z * sa + i * K + k]
                    let bv = transB ? b.data[z * sb + j * K + k] : b.data[z * sb + k * N + j]
                    s += av * bv
                }
                out[(z * M + i) * N + j] = Double(alpha) * s
            } }
        }
        return HostTensor(out, batchDims + [M, N])
    }

    public func linear(_ x: HostTensor, _ w: HostTensor, _ bias: HostTensor?) throws -> HostTensor {
        let inF = x.shape.last!, outF = w.shape[0]
        let rows = x.count / inF
        var out = [Double](repeating: 0, count: rows * outF)
        for r in 0..<rows { for o in 0..<outF {
            var s = bias?.data[o] ?? 0
            for i in 0..<inF { s += x.data[r * inF + i] * w.data[o * inF + i] }
            out[r * outF + o] = s
        } }
        return HostTensor(out, Array(x.shape.dropLast()) + [outF])
    }

    public func binary(_ a: HostTensor, _ b: HostTensor, _ op: BinaryOp) throws -> HostTensor {
        let (v, s) = Reference.binary(a.data, a.shape, b.data, b.shape, op)
        return HostTensor(v, s)
    }
    public func scale(_ x: HostTensor, _ s: Float) throws -> HostTensor { HostTensor(x.data.map { $0 * Double(s) }, x.shape) }
    public func unary(_ x: HostTensor, _ act: Activation) throws -> HostTensor { HostTensor(Reference.unary(x.data, act), x.shape) }
    public func unaryBackward(_ x: HostTensor, _ dy: HostTensor, _ act: Activation) throws -> HostTensor {
        HostTensor(Reference.unaryBackward(x.data, dy.data, act), x.shape)
    }

    public func sumTo(_ x: HostTensor, _ shape: [Int]) throws -> HostTensor {
        var cur = x
        let pad = x.shape.count - shape.count
        let target = Array(repeating: 1, count: pad) + shape
        for d in 0..<x.shape.count where target[d] != cur.shape[d] {
            let (v, _) = Reference.reduce(cur.data, shape: cur.shape, axis: d, .sum)
            var s = cur.shape; s[d] = 1
            cur = HostTensor(v, s)
        }
        return HostTensor(cur.data, shape)
    }

    public func reduce(_ x: HostTensor, axis: Int, _ op: ReduceOp) throws -> HostTensor {
        let (v, _) = Reference.reduce(x.data, shape: x.shape, axis: axis, op)
        var s = x.shape; s.remove(at: axis)
        return HostTensor(v, s)
    }

    public func amax(_ x: HostTensor, axis: Int) throws -> (HostTensor, ArgMax) {
        let (v, arg) = Reference.reduce(x.data, shape: x.shape, axis: axis, .max)
        var s = x.shape; s.remove(at: axis)
        return (HostTensor(v, s), arg)
    }

    public func amaxBackward(_ dy: HostTensor, _ idx: [Int], shape: [Int], axis: Int) throws -> HostTensor {
        let outer = shape[..<axis].reduce(1, *), R = shape[axis], inner = shape[(axis + 1)...].reduce(1, *)
        var out = [Double](repeating: 0, count: shape.reduce(1, *))
        for o in 0..<outer { for j in 0..<inner { out[(o * R + idx[o * inner + j]) * inner + j] = dy.data[o * inner + j] } }
        return HostTensor(out, shape)
    }

    public func softmax(_ x: HostTensor, scale: Float) throws -> HostTensor {
        HostTensor(Reference.softmax(x.data, cols: x.shape.last!, scale: Double(scale)), x.shape)
    }
    public func softmaxBackward(_ y: HostTensor, _ dy: HostTensor, scale: Float) throws -> HostTensor {
        HostTensor(Reference.softmaxBackward(y.data, dy.data, cols: y.shape.last!, scale: Double(scale)), y.shape)
    }

    public func layerNorm(_ x: HostTensor, _ gamma: HostTensor?, _ beta: HostTensor?, eps: Float) throws -> (HostTensor, HostTensor) {
        let y = Reference.layerNorm(x.data, cols: x.shape.last!, gamma: gamma?.data, beta: beta?.data, eps: Double(eps))
        return (HostTensor(y, x.shape), HostTensor([Double(eps)], [1]))
    }
    public func layerNormBackward(_ x: HostTensor, _ gamma: HostTensor?, _ stats: HostTensor, _ dy: HostTensor, wantInput: Bool,
                                  wantParams: Bool) throws -> (HostTensor?, HostTensor?, HostTensor?) {
        let cols = x.shape.last!
        let (dx, dg, db) = Reference.layerNormBackward(x.data, cols: cols, gamma: gamma?.data, eps: stats.data[0], dy: dy.data)
        return (wantInput ? HostTensor(dx, x.shape) : nil, wantParams ? HostTensor(dg, [cols]) : nil, wantParams ? HostTensor(db, [cols]) : nil)
    }

    public func batchNorm(_ x: HostTensor, channelAxis: Int, _ gamma: HostTensor?, _ beta: HostTensor?, runningMean: HostTensor,
                          runningVar: HostTensor, training: Bool, momentum: Float, eps: Float) throws -> (HostTensor, HostTensor) {
        let outer = x.shape[..<channelAxis].reduce(1, *), C = x.shape[channelAxis], inner = x.shape[(channelAxis + 1)...].reduce(1, *)
        let r = Reference.batchNorm(x.data, outer: outer, C: C, inner: inner, gamma: gamma?.data, beta: beta?.data,
                                    runningMean: runningMean.data, runningVar: runningVar.data, training: training,
                                    momentum: Double(momentum), eps: Double(eps))
        if training { runningMean.data = r.runningMean; runningVar.data = r.runningVar }
        return (HostTensor(r.y, x.shape), HostTensor([Double(eps)], [1]))
    }

    public func batchNormBackward(_ x: HostTensor, channelAxis: Int, _ gamma: HostTensor?, _ stats: HostTensor, runningVar: HostTensor,
                                  training: Bool, eps: Float, _ dy: HostTensor) throws -> (HostTensor, HostTensor?, HostTensor?) {
        let outer = x.shape[..<channelAxis].reduce(1, *), C = x.shape[channelAxis], inner = x.shape[(channelAxis + 1)...].reduce(1, *)
        guard training else {
            var dx = dy.data
            for i in dx.indices { let c = (i / inner) % C; dx[i] *= (gamma?.data[c] ?? 1) / (runningVar.data[c] + Double(eps)).squareRoot() }
            return (HostTensor(dx, x.shape), nil, nil)
        }
        let (dx, dg, db) = Reference.batchNormBackward(x.data, outer: outer, C: C, inner: inner, gamma: gamma?.data, eps: Double(eps), dy: dy.data)
        return (HostTensor(dx, x.shape), gamma == nil ? nil : HostTensor(dg, [C]), gamma == nil ? nil : HostTensor(db, [C]))
    }

    public func attention(_ q: HostTensor, _ k: HostTensor, _ v: HostTensor, scale: Float) throws -> (HostTensor, HostTensor) {
        let (B, H, Lq, D) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3])
        let (Lk, Dv) = (k.shape[2], v.shape[3])
        let r = Reference.attention(q: q.data, k: k.data, v: v.data, BH: B * H, Lq: Lq, Lk: Lk, D: D, Dv: Dv, scale: Double(scale))
        return (HostTensor(r.out, [B, H, Lq, Dv]), HostTensor(r.probs, [B, H, Lq, Lk]))
    }

    public func attentionBackward(_ q: HostTensor, _ k: HostTensor, _ v: HostTensor, probs: HostTensor, scale: Float, _ dOut: HostTensor,
                                  want: GradientsWanted) throws -> (HostTensor?, HostTensor?, HostTensor?) {
        let (B, H, Lq, D) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3])
        let (Lk, Dv) = (k.shape[2], v.shape[3])
        let (dq, dk, dv) = Reference.attentionBackward(q: q.data, k: k.data, v: v.data, BH: B * H, Lq: Lq, Lk: Lk, D: D, Dv: Dv,
                                                       scale: Double(scale), dOut: dOut.data)
        return (want.first ? HostTensor(dq, q.shape) : nil, want.second ? HostTensor(dk, k.shape) : nil, want.third ? HostTensor(dv, v.shape) : nil)
    }

    public func conv2d(_ x: HostTensor, _ w: HostTensor, padding: Int) throws -> HostTensor {
        let (B, Cin, H, W) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (Cout, KH, KW) = (w.shape[0], w.shape[2], w.shape[3])
        let y = Reference.conv2d(x.data, B: B, Cin: Cin, H: H, W: W, w: w.data, Cout: Cout, KH: KH, KW: KW, pad: padding)
        return HostTensor(y, [B, Cout, H + 2 * padding - KH + 1, W + 2 * padding - KW + 1])
    }

    public func conv2dBackward(_ x: HostTensor, _ w: HostTensor, padding: Int, _ dy: HostTensor, wantInput: Bool, wantWeight: Bool) throws -> (HostTensor?, HostTensor?) {
        let (B, Cin, H, W) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (Cout, KH, KW) = (w.shape[0], w.shape[2], w.shape[3])
        let (dx, dw) = Reference.conv2dBackward(x.data, B: B, Cin: Cin, H: H, W: W, w: w.data, Cout: Cout, KH: KH, KW: KW, pad: padding, dy: dy.data)
        return (wantInput ? HostTensor(dx, x.shape) : nil, wantWeight ? HostTensor(dw, w.shape) : nil)
    }

    public func rope(_ x: HostTensor, cos: HostTensor, sin: HostTensor, half: Bool, inverse: Bool) throws -> HostTensor {
        let s = x.shape
        guard s.count == 4, s[3] % 2 == 0, cos.shape == [s[1], s[3]], sin.shape == cos.shape else {
            throw OpError.shape("rope", "x \(s), tables \(cos.shape) \(sin.shape): (B, T, H, hd) and (T, hd)")
        }
        let (T, H, hd) = (s[1], s[2], s[3]), half2 = hd / 2
        var y = x.data
        for b in 0..<s[0] { for t in 0..<T { for h in 0..<H {
            let base = ((b * T + t) * H + h) * hd, row = t * hd
            for j in 0..<half2 {
                let ia = half ? j : 2 * j, ib = half ? j + half2 : 2 * j + 1
                let (xa, xb) = (x.data[base + ia], x.data[base + ib])
                let (ca, cb, sa, sb) = (cos.data[row + ia], cos.data[row + ib], sin.data[row + ia], sin.data[row + ib])
                if inverse { y[base + ia] = xa * ca + xb * sb; y[base + ib] = xb * cb - xa * sa }
                else { y[base + ia] = xa * ca - xb * sa; y[base + ib] = xb * cb + xa * sb }
            }
        } } }
        return HostTensor(y, s)
    }

    public func l2Normalize(_ x: HostTensor, eps: Float) throws -> HostTensor {
        HostTensor(Reference.l2Normalize(x.data, cols: x.shape.last!, eps: Double(eps)), x.shape)
    }
    public func l2NormalizeBackward(_ x: HostTensor, _ dy: HostTensor, eps: Float) throws -> HostTensor {
        HostTensor(Reference.l2NormalizeBackward(x.data, dy.data, cols: x.shape.last!, eps: Double(eps)), x.shape)
    }
}
