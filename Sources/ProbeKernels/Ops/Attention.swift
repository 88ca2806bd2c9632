import ProbeShaders
import VulkanCompute

/// What attention's backward needs from its forward.
public struct AttentionSaved {
    /// (B, H, Lq, Lk) probabilities.
    public let probs: Tensor
    /// (B, H, Lq) log-sum-exp of the scaled scores, where the fused kernel computed it.
    public let logSumExp: Tensor?
    public init(probs: Tensor, logSumExp: Tensor?) { self.probs = probs; self.logSumExp = logSumExp }
}

extension KernelContext {
    /// Multi-head attention `O = softmax(scale · Q Kᵀ) V` per (batch, head), fused with online
    /// softmax. q (B, H, Lq, D), k (B, H, Lk, D), v (B, H, Lk, Dv), out (B, H, Lq, Dv): any strides
    /// with a contiguous last axis (views of packed projections). Self- and cross-attention alike.
    /// With `saveProbabilities` it also returns P (the attention maps) and the log-sum-exp.
    /// `bias` (H, Lq, Lk) f32 is added to the scaled scores of every batch (BEiT's relative
    /// position bias: `softmax(scale · Q Kᵀ + bias) V`).
    @discardableResult
    public func attention(q: Tensor, k: Tensor, v: Tensor, scale: Float, into out: Tensor,
                          saveProbabilities: Bool = false, bias: Tensor? = nil) throws -> AttentionSaved? {
        let op = "attention"
        try checkDevice(op, q, k, v, out)
        let f16 = q.dtype == .f16
        guard [q, k, v, out].allSatisfy({ $0.dtype == q.dtype }), q.dtype.isF32OrF16 else {
            throw OpError.dtype(op, "q \(q), k \(k), v \(v), out \(out): all f32 or all f16")
        }
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
        if let bias {
            try checkDevice(op, bias); try requireF32(op, bias)
            guard bias.shape == [H, Lq, Lk] else { throw OpError.shape(op, "bias \(bias) for scores (\(B), \(H), \(Lq), \(Lk)): (H, Lq, Lk) expected") }
        }
        // Wide heads (abmilp's and simpool's single 768-wide head): the fused kernel recomputes
        // the scores for every chunk of the value width, so there GEMM → softmax → GEMM wins
        // (measured on lavapipe, B 4, H 1, L 49, D 768: 137 ms fused).
        // Few query rows (pooling heads: one query per head): the fused kernel's invocation per
        // row would leave all but a lane or two of each workgroup idle (esimpool's 4 × 12 × 1 × 49
        // attention: 3.1 ms fused on lavapipe). On CPU devices the GEMMs win at every f32 shape
        // measured: 1 × 12 × 197 × 64 takes 11.8 ms unfused, 40 ms fused (one query row per lane
        // with scalar dot products).
        let chunk = Dv <= 32 ? 32 : 64
        let fewRows = Lq * ((Dv + chunk - 1) / chunk) < Int(variants.elementwiseLocal) / 4
        // f16 operands (fp16 backbones) on CPU devices: scores and softmax in f32 from f16 inputs,
        // the probabilities rounded to f16 for the second GEMM (the fused kernel rounds only the
        // output; the extra rounding is 2⁻¹¹ relative per weight, inside the fp16 bound).
        // A bias on the scores: unfused (the fused kernel has no operand for it).
        // Heads wider than 128: unfused in either storage (the fused kernel holds a query row in
        // registers, HEAD_DIM of them).
        let unfused = bias != nil || !variants.attentionFused || max(D, Dv) > 128 || (!f16 && fewRows)
        if unfused {
            // Saved probabilities stay dense (callers and the backward take them as they are).
            let pad = !saveProbabilities
            var scores = try scoresTensor(B, H, Lq, Lk, padded: pad)
            try gemm(q, k, into: scores, transB: true, alpha: scale)
            if let bias { scores = try binary(scores, bias, .add) }   // (binary ops write dense outputs)
            let probs = try softmax(scores, into: scoresTensor(B, H, Lq, Lk, padded: pad))
            if f16 {
                let half = try scoresTensor(B, H, Lq, Lk, padded: true, dtype: .f16)
                try copy(probs, into: half)
                try gemm(half, v, into: out)
            } else {
                try gemm(probs, v, into: out)
            }
            return saveProbabilities ? AttentionSaved(probs: probs, logSumExp: nil) : nil
        }
        let probs = saveProbabilities ? try empty([B, H, Lq, Lk]) : nil
        let lse = saveProbabilities ? try empty([B, H, Lq]) : nil
        let local = variants.elementwiseLocal
        // Pieces of (B, H, Lq): every operand but k and v follows the queries.
        var operands = [q, k, v, out]
        if let probs, let lse { operands += [probs, lse] }
        let withQueries: [Int?] = [2, nil, nil, 2, 2, 2]
        try forEachPiece(op, operands, [SplitAxis(size: B, axes: operands.map { _ in 0 }), SplitAxis(size: H, axes: operands.map { _ in 1 }),
                                        SplitAxis(size: Lq, axes: Array(withQueries.prefix(operands.count)))]) { t, _ in
            let (bq, oq) = try bind(t[0], .read, op: op), (bk, ok) = try bind(t[1], .read, op: op)
            let (bv, ov) = try bind(t[2], .read, op: op), (bo, oo) = try bind(t[3], .write, op: op)
            // Unused probability outputs bind a scratch buffer: never alias the output being written.
            let (bp, op_) = probs == nil ? (try scratchBinding(), 0) : try bind(t[4], .write, op: op)
            let (bl, ol) = lse == nil ? (try scratchBinding(), 0) : try bind(t[5], .write, op: op)
            let (pb, ph, pq) = (t[0].shape[0], t[0].shape[1], t[0].shape[2])
            // The kernel addresses probabilities and log-sum-exp as dense (B, H, Lq, Lk) rows.
            guard t.count == 4 || (t[4].isDense && t[5].isDense) else {
                throw OpError.unsupported(op, "attention split into pieces \(t[4]) whose saved probabilities are not dense")
            }
            let items = pq * ((Dv + chunk - 1) / chunk)
            let groups = ((items + Int(local) - 1) / Int(local), 1, pb * ph)
            if stream.profiling { stream.opFlops = 2 * Double(pb * ph * pq * Lk) * Double(D + Dv) }
            // One push block for either kernel (the texel twin shares AttentionKernel.Push).
            let push = AttentionKernel.Push(H: ph, Lq: pq, Lk: Lk, D: D, Dv: Dv,
                                            offQ: oq, qb: t[0].strides[0], qh: t[0].strides[1], ql: t[0].strides[2],
                                            offK: ok, kb: t[1].strides[0], kh: t[1].strides[1], kl: t[1].strides[2],
                                            offV: ov, vb: t[2].strides[0], vh: t[2].strides[1], vl: t[2].strides[2],
                                            offO: oo, ob: t[3].strides[0], oh: t[3].strides[1], ol: t[3].strides[2],
                                            offP: op_, offL: ol, scale: scale)
            // q, k, v as texel buffers where their buffers hold whole texels (as the CPU GEMM).
            if variants.texelTwins, let tq = texelBinding(bq, q.dtype), let tk = texelBinding(bk, k.dtype), let tv = texelBinding(bv, v.dtype) {
                let kern = try kernel(AttentionKernel.self, f16 ? .texel_f16 : .texel,
                                      .init(localSizeX: local, CHUNK: UInt32(chunk), WRITE_PROBS: probs != nil, HEAD_DIM: UInt32(D)))
                try stream.dispatch(kern, [tq, tk, tv, bo, bp, bl], push: push, groups: groups)
                return
            }
            let kern = try kernel(AttentionKernel.self, f16 ? .f16 : .base, .init(localSizeX: local, CHUNK: UInt32(chunk), WRITE_PROBS: probs != nil, HEAD_DIM: UInt32(D)))
            try stream.dispatch(kern, [bq, bk, bv, bo, bp, bl], push: push, groups: groups)
        }
        return probs.map { AttentionSaved(probs: $0, logSumExp: lse!) }
    }

    /// (B, H, Lq, Lk) scores or probabilities. `padded` on CPU devices: each row starts on a
    /// four-element boundary (rows padded to a multiple of 4, the padding never read), so that the
    /// GEMM with them as A (P·V) reads them as float4s along K (ViT-B's P·V at 197 keys: 28 → 61
    /// GFLOP/s).
    func scoresTensor(_ B: Int, _ H: Int, _ Lq: Int, _ Lk: Int, padded: Bool, dtype: DType = .f32) throws -> Tensor {
        let row = padded && variants.cpuShaped ? (Lk + 3) / 4 * 4 : Lk
        guard row != Lk else { return try empty([B, H, Lq, Lk], dtype: dtype) }
        let padded = try empty([B, H, Lq, row], dtype: dtype)
        return Tensor(buffer: padded.buffer, offset: padded.offset, shape: [B, H, Lq, Lk], strides: [H * Lq * row, Lq * row, row, 1], dtype: dtype)
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
