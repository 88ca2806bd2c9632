import ProbeAutodiff
import ProbeShaders
import VulkanCompute

/// The device backend: every primitive is a kernel dispatch recorded into the context's stream.
public final class GPUBackend: Backend {
    public typealias Value = Tensor
    public typealias ArgMax = Tensor
    public let ctx: KernelContext
    /// Mixed precision (`--head-precision fp16|bf16`, upstream's `--amp`): GEMM operands rounded to
    /// this type (f16 or bf16), products accumulated and stored in fp32 (PyTorch's autocast runs
    /// matmuls in the low precision and keeps softmax and norms in fp32; so do we). nil: fp32.
    /// On GPUs with cooperative matrices f16 is the tensor-core path.
    public var gemmInputs: DType?
    public init(_ ctx: KernelContext) { self.ctx = ctx }

    func gemmOperand(_ t: Tensor) throws -> Tensor {
        guard let low = gemmInputs, t.dtype == .f32 else { return t }
        return try ctx.contiguous(t, dtype: low)
    }

    public func shape(_ x: Tensor) -> [Int] { x.shape }
    public func constant(_ values: [Float], _ shape: [Int]) throws -> Tensor { try ctx.tensor(values, shape) }
    public func zeros(_ shape: [Int]) throws -> Tensor {
        let t = try ctx.empty(shape)
        try ctx.stream.fill(try t.buffer.range(offset: 0, size: max(4, t.count * 4)), with: 0)
        return t
    }
    public func toHost(_ x: Tensor) throws -> [Float] { try ctx.read(x) }
    func c(_ x: Tensor) throws -> Tensor { try ctx.contiguous(x) }

    public func reshape(_ x: Tensor, _ shape: [Int]) throws -> Tensor { try c(x).reshaped(shape) }
    public func permute(_ x: Tensor, _ order: [Int]) throws -> Tensor { try x.permuted(order) }
    public func slice(_ x: Tensor, axis: Int, _ range: Range<Int>) throws -> Tensor { try x.slice(axis: axis, range) }
    public func concat(_ parts: [Tensor], axis: Int) throws -> Tensor { try ctx.concat(parts, axis: axis) }

    public func expand(_ x: Tensor, _ shape: [Int]) throws -> Tensor {
        let pad = shape.count - x.rank
        let xs = Array(repeating: 1, count: pad) + x.shape, st = Array(repeating: 0, count: pad) + x.strides
        let view = Tensor(buffer: x.buffer, offset: x.offset, shape: shape, strides: zip(xs, st).map { $0 == 1 ? 0 : $1 }, dtype: x.dtype)
        let out = try ctx.empty(shape)
        try ctx.copy(view, into: out)
        return out
    }

    public func padSlice(_ x: Tensor, shape: [Int], axis: Int, _ range: Range<Int>) throws -> Tensor {
        let out = try zeros(shape)
        try ctx.copy(x, into: try out.slice(axis: axis, range))
        return out
    }

    public func addSlice(_ target: Tensor, _ x: Tensor, axis: Int, _ range: Range<Int>) throws -> Tensor {
        let view = try target.slice(axis: axis, range)
        // In place: work of the slice's size instead of a zero-padded copy and an add of the whole
        // tensor (the gradients of a packed projection's q, k and v).
        if view.isContiguous {
            _ = try ctx.binary(view, x, .add, into: view)
        } else {
            // A strided slice (q, k or v of a packed projection's output): add, then copy back.
            try ctx.copy(try ctx.binary(view, x, .add), into: view)
        }
        return target
    }

    public func matmul(_ a: Tensor, _ b: Tensor, transA: Bool, transB: Bool, alpha: Float) throws -> Tensor {
        let a = try gemmOperand(a), b = try gemmOperand(b)
        let M = transA ? a.shape[a.rank - 1] : a.shape[a.rank - 2]
        let N = transB ? b.shape[b.rank - 2] : b.shape[b.rank - 1]
        let batchDims = a.rank > 2 ? Array(a.shape.prefix(a.rank - 2)) : Array(b.shape.prefix(b.rank - 2))
        let out = try ctx.empty(batchDims + [M, N])
        // GEMM batches over at most two axes: fold extra leading axes of contiguous operands.
        if batchDims.count > 2 {
            let fold = { (t: Tensor) throws -> Tensor in t.rank > 2 ? try self.c(t).reshaped([-1] + Array(t.shape.suffix(2))) : t }
            try ctx.gemm(try fold(a), try fold(b), into: try out.reshaped([-1, M, N]), transA: transA, transB: transB, alpha: alpha)
        } else {
            try ctx.gemm(a, b, into: out, transA: transA, transB: transB, alpha: alpha)
        }
        return out
    }

    public func linear(_ x: Tensor, _ w: Tensor, _ bias: Tensor?) throws -> Tensor {
        let inF = x.shape.last!
        let x2 = try gemmOperand(try c(x).reshaped([-1, inF]))
        let y = try ctx.empty([x2.shape[0], w.shape[0]])
        try ctx.gemm(x2, try gemmOperand(w), into: y, transB: true, bias: bias)
        return try y.reshaped(Array(x.shape.dropLast()) + [w.shape[0]])
    }

    public func binary(_ a: Tensor, _ b: Tensor, _ op: BinaryOp) throws -> Tensor { try ctx.binary(a, b, op) }
    public func scale(_ x: Tensor, _ s: Float) throws -> Tensor { try ctx.unary(try c(x), .none, alpha: s) }
    public func unary(_ x: Tensor, _ act: Activation) throws -> Tensor { try ctx.unary(try c(x), act) }
    public func unaryBackward(_ x: Tensor, _ dy: Tensor, _ act: Activation) throws -> Tensor {
        let dx = try ctx.empty(x.shape)
        try ctx.unaryBackward(try c(x), try c(dy), act, into: dx)
        return dx
    }

    public func sumTo(_ x: Tensor, _ shape: [Int]) throws -> Tensor { try ctx.sumTo(try c(x), shape) }
    public func reduce(_ x: Tensor, axis: Int, _ op: ReduceOp) throws -> Tensor { try ctx.reduce(x, axis: axis, op).values }

    public func amax(_ x: Tensor, axis: Int) throws -> (Tensor, ArgMax) {
        let r = try ctx.reduce(x, axis: axis, .max)
        return (r.values, r.argmax!)
    }

    public func amaxBackward(_ dy: Tensor, _ t: Tensor, shape: [Int], axis: Int) throws -> Tensor {
        return try ctx.maxBackward(try c(dy), argmax: t, shape: shape, axis: axis)
    }

    public func softmax(_ x: Tensor, scale: Float) throws -> Tensor { try ctx.softmax(try c(x), scale: scale) }
    public func softmaxBackward(_ y: Tensor, _ dy: Tensor, scale: Float) throws -> Tensor {
        let dx = try ctx.empty(y.shape)
        try ctx.softmaxBackward(try c(y), try c(dy), scale: scale, into: dx)
        return dx
    }

    public func layerNorm(_ x: Tensor, _ gamma: Tensor?, _ beta: Tensor?, eps: Float) throws -> (Tensor, Tensor) {
        try ctx.layerNorm(try c(x), gamma: gamma, beta: beta, eps: eps)
    }

    public func layerNormBackward(_ x: Tensor, _ gamma: Tensor?, _ stats: Tensor, _ dy: Tensor, wantInput: Bool,
                                  wantParams: Bool) throws -> (Tensor?, Tensor?, Tensor?) {
        let cols = x.shape.last!
        let dx = wantInput ? try ctx.empty(x.shape) : nil
        let dg = wantParams ? try ctx.empty([cols]) : nil, db = wantParams ? try ctx.empty([cols]) : nil
        try ctx.layerNormBackward(try c(x), gamma: gamma, stats: stats, try c(dy), into: dx, dGamma: dg, dBeta: db)
        return (dx, dg, db)
    }

    public func batchNorm(_ x: Tensor, channelAxis: Int, _ gamma: Tensor?, _ beta: Tensor?, runningMean: Tensor, runningVar: Tensor,
                          training: Bool, momentum: Float, eps: Float) throws -> (Tensor, Tensor) {
        try ctx.batchNorm(try c(x), channelAxis: channelAxis, gamma: gamma, beta: beta, runningMean: runningMean, runningVar: runningVar,
                          training: training, momentum: momentum, eps: eps)
    }

    public func batchNormBackward(_ x: Tensor, channelAxis: Int, _ gamma: Tensor?, _ stats: Tensor, runningVar: Tensor,
                                  training: Bool, eps: Float, _ dy: Tensor) throws -> (Tensor, Tensor?, Tensor?) {
        let C = x.shape[channelAxis]
        let dx = try ctx.empty(x.shape)
        let dgb = gamma != nil && training ? try ctx.empty([2 * C]) : nil
        try ctx.batchNormBackward(try c(x), channelAxis: channelAxis, gamma: gamma, stats: stats, runningVar: runningVar,
                                  training: training, eps: eps, try c(dy), into: dx, dGammaBeta: dgb)
        guard let dgb else { return (dx, nil, nil) }
        return (dx, try dgb.slice(axis: 0, 0..<C), try dgb.slice(axis: 0, C..<(2 * C)))
    }

    public func attention(_ q: Tensor, _ k: Tensor, _ v: Tensor, scale: Float) throws -> (Tensor, Tensor) {
        // Written as (B, Lq, H, Dv), viewed as (B, H, Lq, Dv): merging the heads is then no copy.
        let out = try ctx.empty([q.shape[0], q.shape[2], q.shape[1], v.shape[3]]).permuted([0, 2, 1, 3])
        let saved = try ctx.attention(q: q, k: k, v: v, scale: scale, into: out, saveProbabilities: true)!
        return (out, saved.probs)
    }

    public func flush() throws { try ctx.stream.submit() }

    public func rope(_ x: Tensor, cos: Tensor, sin: Tensor, half: Bool, inverse: Bool) throws -> Tensor {
        let y = try ctx.empty(x.shape)   // a fresh tensor: the kernel rotates in place
        try ctx.copy(x, into: y)
        try ctx.rope(y, cos: try c(cos), sin: try c(sin), pairing: half ? .half : .interleaved, inverse: inverse)
        return y
    }

    /// The fused forward: the probabilities are never stored.
    public func attentionOutput(_ q: Tensor, _ k: Tensor, _ v: Tensor, scale: Float) throws -> Tensor {
        let out = try ctx.empty([q.shape[0], q.shape[2], q.shape[1], v.shape[3]]).permuted([0, 2, 1, 3])
        _ = try ctx.attention(q: q, k: k, v: v, scale: scale, into: out)
        return out
    }

    public func attentionBackward(_ q: Tensor, _ k: Tensor, _ v: Tensor, probs: Tensor, scale: Float, _ dOut: Tensor,
                                  want: GradientsWanted) throws -> (Tensor?, Tensor?, Tensor?) {
        // Each gradient in its input's layout (a head split's view): the split's backward is then no copy.
        let dq = want.first ? try ctx.empty(like: q) : nil, dk = want.second ? try ctx.empty(like: k) : nil
        let dv = want.third ? try ctx.empty(like: v) : nil
        let lse = try ctx.empty([1])
        try ctx.attentionBackward(q: q, k: k, v: v, saved: AttentionSaved(probs: probs, logSumExp: lse), scale: scale,
                                  dOut: dOut, dq: dq, dk: dk, dv: dv)
        return (dq, dk, dv)
    }

    public func conv2d(_ x: Tensor, _ w: Tensor, padding: Int) throws -> Tensor { try ctx.conv2d(try c(x), try c(w), padding: padding) }
    public func conv2dBackward(_ x: Tensor, _ w: Tensor, padding: Int, _ dy: Tensor, wantInput: Bool, wantWeight: Bool) throws -> (Tensor?, Tensor?) {
        let dx = wantInput ? try ctx.empty(x.shape) : nil, dw = wantWeight ? try ctx.empty(w.shape) : nil
        try ctx.conv2dBackward(try c(x), try c(w), padding: padding, try c(dy), dx: dx, dw: dw)
        return (dx, dw)
    }

    public func l2Normalize(_ x: Tensor, eps: Float) throws -> Tensor { try ctx.l2Normalize(try c(x), eps: eps) }
    public func l2NormalizeBackward(_ x: Tensor, _ dy: Tensor, eps: Float) throws -> Tensor {
        try ctx.l2Normalize(try c(x), eps: eps, backwardOf: try c(dy))
    }
}
