import VulkanCompute

/// Activation applied in a GEMM epilogue or elementwise (values match Shaders/activations.glsl).
public enum Activation: UInt32, Sendable, CaseIterable {
    case none = 0, gelu, quickGELU, tanhGELU, relu, sigmoid, tanh, softplus
}

extension KernelContext {
    /// `C = act(alpha · op(A) · op(B) + beta · C + bias)`, batched.
    ///
    /// - A: (..., M, K), or (..., K, M) with `transA`; B: (..., K, N), or (..., N, K) with `transB`
    ///   (PyTorch Linear weights). C: (..., M, N) with contiguous rows. Up to two leading batch axes
    ///   (e.g. (B, heads)); any strides (views of packed projections work). An operand without the
    ///   batch axes is shared by every batch (stride 0).
    /// - bias: (N,), added to every row. f32 everywhere, or f16 everywhere (accumulation is f32).
    public func gemm(_ a: Tensor, _ b: Tensor, into c: Tensor, transA: Bool = false, transB: Bool = false,
                     alpha: Float = 1, beta: Float = 0, bias: Tensor? = nil, activation: Activation = .none) throws {
        let op = "gemm"
        try checkDevice(op, a, b, c)
        if let bias { try checkDevice(op, bias) }
        let dtype = c.dtype
        let desc = "A \(a)\(transA ? "ᵀ" : ""), B \(b)\(transB ? "ᵀ" : ""), C \(c)"
        guard dtype != .i32, a.dtype == dtype, b.dtype == dtype, bias.map({ $0.dtype == dtype }) ?? true else {
            throw OpError.dtype(op, "\(desc)\(bias.map { ", bias \($0)" } ?? ""): all must be f32 or all f16")
        }
        guard (2...4).contains(c.rank), a.rank == 2 || a.rank == c.rank, b.rank == 2 || b.rank == c.rank else {
            throw OpError.shape(op, "\(desc): ranks must be 2 to 4, and A and B either rank 2 or C's rank")
        }
        let (M, K) = transA ? (a.shape[a.rank - 1], a.shape[a.rank - 2]) : (a.shape[a.rank - 2], a.shape[a.rank - 1])
        let (Kb, N) = transB ? (b.shape[b.rank - 1], b.shape[b.rank - 2]) : (b.shape[b.rank - 2], b.shape[b.rank - 1])
        guard K == Kb, c.shape[c.rank - 2] == M, c.shape[c.rank - 1] == N else { throw OpError.shape(op, desc) }
        let batchDims = Array(c.shape.prefix(c.rank - 2))
        guard (a.rank == 2 || Array(a.shape.prefix(a.rank - 2)) == batchDims),
              (b.rank == 2 || Array(b.shape.prefix(b.rank - 2)) == batchDims) else {
            throw OpError.shape(op, "batch axes differ: \(desc)")
        }
        guard c.strides[c.rank - 1] == 1 else { throw OpError.shape(op, "C \(c) must have contiguous rows") }
        if let bias, bias.shape != [N] || !bias.isContiguous { throw OpError.shape(op, "bias \(bias) must be contiguous (\(N),)") }
        if M == 0 || N == 0 || c.count == 0 { return }
        guard K > 0 else { throw OpError.unsupported(op, "K = 0 is not supported (\(desc))") }
        try gemmChunk(a, b, c, transA: transA, transB: transB, bias: bias, alpha: alpha, beta: beta, activation: activation)
    }

    /// Dispatches one GEMM, splitting over the batch axes then rows when an operand's window would
    /// exceed maxStorageBufferRange.
    private func gemmChunk(_ a: Tensor, _ b: Tensor, _ c: Tensor, transA: Bool, transB: Bool, bias: Tensor?,
                           alpha: Float, beta: Float, activation: Activation) throws {
        let limit = device.capabilities.maxStorageBufferRange - 2 * device.capabilities.minStorageBufferOffsetAlignment
        let fits = { (t: Tensor) in t.span * t.dtype.size <= limit }
        let M = c.shape[c.rank - 2], N = c.shape[c.rank - 1]
        let K = transA ? a.shape[a.rank - 2] : a.shape[a.rank - 1]
        if !(fits(a) && fits(b) && fits(c)) {
            // Split the first batch axis with more than one entry, else the rows of A and C.
            if let axis = (0..<(c.rank - 2)).first(where: { c.shape[$0] > 1 }) {
                let h = c.shape[axis] / 2
                for r in [0..<h, h..<c.shape[axis]] {
                    try gemmChunk(a.rank == c.rank ? try a.slice(axis: axis, r) : a, b.rank == c.rank ? try b.slice(axis: axis, r) : b,
                                  try c.slice(axis: axis, r), transA: transA, transB: transB, bias: bias,
                                  alpha: alpha, beta: beta, activation: activation)
                }
                return
            }
            if M > 1, !fits(a) || !fits(c) {
                let mAxisA = transA ? a.rank - 1 : a.rank - 2
                for r in [0..<(M / 2), (M / 2)..<M] {
                    try gemmChunk(try a.slice(axis: mAxisA, r), b, try c.slice(axis: c.rank - 2, r), transA: transA, transB: transB,
                                  bias: bias, alpha: alpha, beta: beta, activation: activation)
                }
                return
            }
            throw VulkanError.bindingTooLarge(bytes: max(a.span * a.dtype.size, b.span * b.dtype.size), limit: limit,
                                              what: "gemm operand (A \(a), B \(b)): one matrix of B exceeds maxStorageBufferRange")
        }
        let (bA, offA) = try bind(a, .read, op: "gemm")
        let (bB, offB) = try bind(b, .read, op: "gemm")
        let (bC, offC) = try bind(c, beta != 0 ? .readWrite : .write, op: "gemm")
        var bBias = bA, offBias = 0
        if let bias { (bBias, offBias) = try bind(bias, .read, op: "gemm") }
        // Batch axes as (outer, inner) with strides; absent axes have size 1, stride 0.
        func batchStrides(_ t: Tensor) -> (Int, Int) {
            guard t.rank == c.rank else { return (0, 0) }
            switch t.rank { case 4: return (t.strides[0], t.strides[1]); case 3: return (0, t.strides[0]); default: return (0, 0) }
        }
        let inner = c.rank >= 3 ? c.shape[c.rank - 3] : 1
        let batch = c.shape.prefix(c.rank - 2).reduce(1, *)
        let (sAo, sAh) = batchStrides(a), (sBo, sBh) = batchStrides(b), (sCo, sCh) = batchStrides(c)
        let r = a.rank, rb = b.rank
        let (sAi, sAk) = transA ? (a.strides[r - 1], a.strides[r - 2]) : (a.strides[r - 2], a.strides[r - 1])
        let (sBk, sBn) = transB ? (b.strides[rb - 1], b.strides[rb - 2]) : (b.strides[rb - 2], b.strides[rb - 1])
        var p = Push()
        for v in [M, N, K, batch, offA, offB, offC, offBias, sAo, sAi, sAk, sBo, sBk, sBn, sCo, c.strides[c.rank - 2]] { p.u(v) }
        p.f(alpha); p.f(beta)
        for v in [inner, sAh, sBh, sCh] { p.u(v) }
        let f16 = c.dtype == .f16
        let common: [UInt32] = [activation.rawValue, bias == nil ? 0 : 1]
        let bindings = [bA, bB, bC, Binding(bBias.range, .read)]
        switch variants.gemm {
        case .cpu:
            let (lanes, rows, cols) = variants.cpuGEMM
            // float4 loads along K when both operands are K-contiguous and 16-byte aligned (in elements: 4).
            let aligned4 = K % 4 == 0 && [offA, sAi, sAo, sAh].allSatisfy { $0 % 4 == 0 }
            let vec4 = aligned4 && sAk == 1 && sBk == 1 && [offB, sBn, sBo, sBh].allSatisfy { $0 % 4 == 0 }
            let vec4A = !vec4 && aligned4 && sAk == 1
            let k = try kernel(f16 ? "gemm_cpu_f16" : "gemm_cpu", bindings: 4, push: p.bytes,
                               spec: [lanes] + common + [rows, cols, vec4 ? 1 : 0, vec4A ? 1 : 0])
            try stream.dispatch(k, bindings, push: p.words,
                                groups: ((N + Int(cols) - 1) / Int(cols), (M + Int(lanes * rows) - 1) / Int(lanes * rows), batch))
        case .tiled:
            let (bm, bn, bk, tm, tn) = (64, 64, 16, 4, 4)
            let threads = UInt32((bm / tm) * (bn / tn))
            let k = try kernel(f16 ? "gemm_tiled_f16" : "gemm_tiled", bindings: 4, push: p.bytes,
                               spec: [threads] + common + [UInt32(bm), UInt32(bn), UInt32(bk), UInt32(tm), UInt32(tn)])
            try stream.dispatch(k, bindings, push: p.words, groups: ((N + bn - 1) / bn, (M + bm - 1) / bm, batch))
        }
    }

    /// Allocates C and computes `act(op(A) · op(B) + bias)`.
    public func matmul(_ a: Tensor, _ b: Tensor, transA: Bool = false, transB: Bool = false,
                       bias: Tensor? = nil, activation: Activation = .none) throws -> Tensor {
        let M = transA ? a.shape[a.rank - 1] : a.shape[a.rank - 2]
        let N = transB ? b.shape[b.rank - 2] : b.shape[b.rank - 1]
        let batchDims = a.rank > 2 ? Array(a.shape.prefix(a.rank - 2)) : Array(b.shape.prefix(b.rank - 2))
        let c = try empty(batchDims + [M, N], dtype: a.dtype)
        try gemm(a, b, into: c, transA: transA, transB: transB, bias: bias, activation: activation)
        return c
    }
}
