import VulkanCompute

/// What attention's backward needs from its forward.
public struct AttentionSaved {
    /// (B, H, Lq, Lk) probabilities.
    public let probs: Tensor
    /// (B, H, Lq) log-sum-exp of the scaled scores.
    public let logSumExp: Tensor
    public init(probs: Tensor, logSumExp: Tensor) { self.probs = probs; self.logSumExp = logSumExp }
}

extension KernelContext {
    /// Multi-head attention `O = softmax(scale · Q Kᵀ) V` per (batch, head), fused with online
    /// softmax. q (B, H, Lq, D), k (B, H, Lk, D), v (B, H, Lk, Dv), out (B, H, Lq, Dv): any strides
    /// with a contiguous last axis (views of packed projections). Self- and cross-attention alike.
    /// With `saveProbabilities` it also returns P (the attention maps) and the log-sum-exp.
    @discardableResult
    public func attention(q: Tensor, k: Tensor, v: Tensor, scale: Float, into out: Tensor,
                          saveProbabilities: Bool = false) throws -> AttentionSaved? {
        let op = "attention"
        try checkDevice(op, q, k, v, out); try requireF32(op, q, k, v, out)
        guard q.rank == 4, k.rank == 4, v.rank == 4, out.rank == 4 else {
            throw OpError.shape(op, "q \(q), k \(k), v \(v), out \(out) must be (B, H, L, D)")
        }
        let (B, H, Lq, D) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3])
        let (Lk, Dv) = (k.shape[2], v.shape[3])
        guard k.shape == [B, H, Lk, D], v.shape == [B, H, Lk, Dv], out.shape == [B, H, Lq, Dv] else {
            throw OpError.shape(op, "q \(q), k \(k), v \(v), out \(out)")
        }
        for t in [q, k, v, out] where t.strides[3] != 1 { throw OpError.shape(op, "\(t): the last axis must be contiguous") }
        guard Lk > 0 else { throw OpError.shape(op, "no keys: k \(k)") }
        // Too large to bind: the halves of the batch.
        var halves: [AttentionSaved] = []
        if try splitting([q, k, v, out], { h in
            if let s = try attention(q: h[0], k: h[1], v: h[2], scale: scale, into: h[3], saveProbabilities: saveProbabilities) { halves.append(s) }
        }) {
            guard saveProbabilities else { return nil }
            return AttentionSaved(probs: try concat(halves.map(\.probs), axis: 0), logSumExp: try concat(halves.map(\.logSumExp), axis: 0))
        }
        let probs = saveProbabilities ? try empty([B, H, Lq, Lk]) : nil
        let lse = saveProbabilities ? try empty([B, H, Lq]) : nil
        let (bq, oq) = try bind(q, .read, op: op), (bk, ok) = try bind(k, .read, op: op)
        let (bv, ov) = try bind(v, .read, op: op), (bo, oo) = try bind(out, .write, op: op)
        let (bp, op_) = try probs.map { try bind($0, .write, op: op) } ?? (bo, 0)
        let (bl, ol) = try lse.map { try bind($0, .write, op: op) } ?? (bo, 0)
        let chunk = Dv <= 32 ? 32 : 64
        var p = Push()
        for n in [H, Lq, Lk, D, Dv, oq, q.strides[0], q.strides[1], q.strides[2], ok, k.strides[0], k.strides[1], k.strides[2],
                  ov, v.strides[0], v.strides[1], v.strides[2], oo, out.strides[0], out.strides[1], out.strides[2], op_, ol] { p.u(n) }
        p.f(scale)
        let local = variants.elementwiseLocal
        let kern = try kernel("attention", bindings: 6, push: p.bytes, spec: [local, UInt32(chunk), probs == nil ? 0 : 1])
        let items = Lq * ((Dv + chunk - 1) / chunk)
        // Unused probability outputs bind a scratch buffer: never alias the output being written.
        let scratch = probs == nil ? try Binding(device.makeBuffer(bytes: 16).whole, .write) : nil
        try stream.dispatch(kern, [bq, bk, bv, bo, scratch ?? bp, scratch ?? bl], push: p.words,
                            groups: ((items + Int(local) - 1) / Int(local), 1, B * H))
        return probs.map { AttentionSaved(probs: $0, logSumExp: lse!) }
    }

    /// Attention backward from the saved probabilities, as GEMMs and a softmax backward:
    /// dV = Pᵀ dO, dP = dO Vᵀ, dS = softmax′(P, dP) · scale, dQ = dS K, dK = dSᵀ Q.
    /// Gradients (each optional) accumulate when `accumulate` (e.g. into views of a packed buffer).
    public func attentionBackward(q: Tensor, k: Tensor, v: Tensor, saved: AttentionSaved, scale: Float, dOut: Tensor,
                                  dq: Tensor?, dk: Tensor?, dv: Tensor?, accumulate: Bool = false) throws {
        let beta: Float = accumulate ? 1 : 0
        let P = saved.probs
        if let dv { try gemm(P, dOut, into: dv, transA: true, beta: beta) }
        guard dq != nil || dk != nil else { return }
        let dP = try empty(P.shape)
        try gemm(dOut, v, into: dP, transB: true)
        let dS = try empty(P.shape)
        try softmaxBackward(P, dP, scale: scale, into: dS)
        if let dq { try gemm(dS, k, into: dq, beta: beta) }
        if let dk { try gemm(dS, q, into: dk, transA: true, beta: beta) }
    }
}
