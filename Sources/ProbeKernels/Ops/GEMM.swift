import VulkanCompute

/// Activation applied in a GEMM epilogue or elementwise (values match Shaders/activations.glsl).
public enum Activation: UInt32, Sendable, CaseIterable {
    case none = 0, gelu, quickGELU, tanhGELU, relu, sigmoid, tanh, softplus
}

extension KernelContext {
    /// `C = act(alpha · op(A) · op(B) + beta · C + bias)`, batched.
    ///
    /// - A: (M, K), or (K, M) with `transA`; B: (K, N), or (N, K) with `transB` (PyTorch Linear
    ///   weights); optionally with a leading batch axis. C: (M, N) or (batch, M, N), rows contiguous.
    ///   An operand without the batch axis is shared by every batch (stride 0).
    /// - bias: (N,), added to every row. f32 everywhere, or f16 everywhere (accumulation is f32).
    public func gemm(_ a: Tensor, _ b: Tensor, into c: Tensor, transA: Bool = false, transB: Bool = false,
                     alpha: Float = 1, beta: Float = 0, bias: Tensor? = nil, activation: Activation = .none) throws {
        let op = "gemm"
        try checkDevice(op, a, b, c)
        if let bias { try checkDevice(op, bias) }
        let dtype = c.dtype
        guard dtype != .i32, a.dtype == dtype, b.dtype == dtype, bias.map({ $0.dtype == dtype }) ?? true else {
            throw OpError.dtype(op, "A \(a), B \(b), C \(c)\(bias.map { ", bias \($0)" } ?? ""): all must be f32 or all f16")
        }
        guard (2...3).contains(a.rank), (2...3).contains(b.rank), (2...3).contains(c.rank) else {
            throw OpError.shape(op, "A \(a), B \(b), C \(c) must have rank 2 or 3")
        }
        let (M, K) = transA ? (a.shape[a.rank - 1], a.shape[a.rank - 2]) : (a.shape[a.rank - 2], a.shape[a.rank - 1])
        let (Kb, N) = transB ? (b.shape[b.rank - 1], b.shape[b.rank - 2]) : (b.shape[b.rank - 2], b.shape[b.rank - 1])
        let batch = c.rank == 3 ? c.shape[0] : 1
        let desc = "A \(a)\(transA ? "ᵀ" : ""), B \(b)\(transB ? "ᵀ" : ""), C \(c)"
        guard K == Kb, c.shape[c.rank - 2] == M, c.shape[c.rank - 1] == N else { throw OpError.shape(op, desc) }
        guard (a.rank == 2 || a.shape[0] == batch), (b.rank == 2 || b.shape[0] == batch), (c.rank == 3 || (a.rank == 2 && b.rank == 2)) else {
            throw OpError.shape(op, "batch sizes differ: \(desc)")
        }
        guard c.strides[c.rank - 1] == 1 else { throw OpError.shape(op, "C \(c) must have contiguous rows") }
        if let bias, bias.shape != [N] || !bias.isContiguous { throw OpError.shape(op, "bias \(bias) must be contiguous (\(N),)") }
        if M == 0 || N == 0 || batch == 0 { return }
        if K == 0 {   // empty sum: C = act(beta C + bias)
            throw OpError.unsupported(op, "K = 0 is not supported (\(desc))")
        }
        try gemmChunk(a, b, c, transA: transA, transB: transB, bias: bias, alpha: alpha, beta: beta,
                      activation: activation, batch: batch, M: M, N: N, K: K)
    }

    /// Dispatches one GEMM, splitting over batch then rows when an operand's window would exceed
    /// maxStorageBufferRange.
    private func gemmChunk(_ a: Tensor, _ b: Tensor, _ c: Tensor, transA: Bool, transB: Bool, bias: Tensor?,
                           alpha: Float, beta: Float, activation: Activation, batch: Int, M: Int, N: Int, K: Int) throws {
        let limit = device.capabilities.maxStorageBufferRange - 2 * device.capabilities.minStorageBufferOffsetAlignment
        let fits = { (t: Tensor) in t.span * t.dtype.size <= limit }
        if !(fits(a) && fits(b) && fits(c)) {
            if batch > 1 {
                let h = batch / 2
                for (lo, hi) in [(0, h), (h, batch)] {
                    let sa = a.rank == 3 ? try a.slice(axis: 0, lo..<hi) : a
                    let sb = b.rank == 3 ? try b.slice(axis: 0, lo..<hi) : b
                    try gemmChunk(sa, sb, try c.slice(axis: 0, lo..<hi), transA: transA, transB: transB, bias: bias,
                                  alpha: alpha, beta: beta, activation: activation, batch: hi - lo, M: M, N: N, K: K)
                }
                return
            }
            if M > 1, !fits(a) || !fits(c) {
                let h = M / 2
                let mAxisA = transA ? a.rank - 1 : a.rank - 2
                for (lo, hi) in [(0, h), (h, M)] {
                    try gemmChunk(try a.slice(axis: mAxisA, lo..<hi), b, try c.slice(axis: c.rank - 2, lo..<hi), transA: transA, transB: transB,
                                  bias: bias, alpha: alpha, beta: beta, activation: activation, batch: batch, M: hi - lo, N: N, K: K)
                }
                return
            }
            throw VulkanError.bindingTooLarge(bytes: max(a.span * a.dtype.size, b.span * b.dtype.size), limit: limit + 32,
                                              what: "gemm operand (A \(a), B \(b)): a single matrix of B larger than maxStorageBufferRange")
        }
        let (bA, offA) = try bind(a, .read, op: "gemm")
        let (bB, offB) = try bind(b, .read, op: "gemm")
        let (bC, offC) = try bind(c, beta != 0 ? .readWrite : .write, op: "gemm")
        var bBias = bA, offBias = 0
        if let bias { (bBias, offBias) = try bind(bias, .read, op: "gemm") }
        let r = a.rank
        let (sAi, sAk) = transA ? (a.strides[r - 1], a.strides[r - 2]) : (a.strides[r - 2], a.strides[r - 1])
        let rb = b.rank
        let (sBk, sBn) = transB ? (b.strides[rb - 1], b.strides[rb - 2]) : (b.strides[rb - 2], b.strides[rb - 1])
        var p = Push()
        for v in [M, N, K, batch, offA, offB, offC, offBias,
                  a.rank == 3 ? a.strides[0] : 0, sAi, sAk,
                  b.rank == 3 ? b.strides[0] : 0, sBk, sBn,
                  c.rank == 3 ? c.strides[0] : 0, c.strides[c.rank - 2]] { p.u(v) }
        p.f(alpha); p.f(beta)
        let f16 = c.dtype == .f16
        let common: [UInt32] = [activation.rawValue, bias == nil ? 0 : 1]
        switch variants.gemm {
        case .cpu, .coopmat:
            let (lanes, rows, cols) = variants.cpuGEMM
            // float4 loads along K when both operands are K-contiguous and 16-byte aligned (in elements: 4).
            let vec4 = sAk == 1 && sBk == 1 && K % 4 == 0
                && [offA, offB, sAi, sBn, a.rank == 3 ? a.strides[0] : 0, b.rank == 3 ? b.strides[0] : 0].allSatisfy { $0 % 4 == 0 }
            let k = try kernel(f16 ? "gemm_cpu_f16" : "gemm_cpu", bindings: 4, push: p.bytes,
                               spec: [lanes] + common + [rows, cols, vec4 ? 1 : 0])
            try stream.dispatch(k, [bA, bB, bC, Binding(bBias.range, .read)], push: p.words,
                                groups: ((N + Int(cols) - 1) / Int(cols), (M + Int(lanes * rows) - 1) / Int(lanes * rows), batch))
        case .tiled:
            let (bm, bn, bk, tm, tn) = (64, 64, 16, 4, 4)
            let threads = UInt32((bm / tm) * (bn / tn))
            let k = try kernel(f16 ? "gemm_tiled_f16" : "gemm_tiled", bindings: 4, push: p.bytes,
                               spec: [threads] + common + [UInt32(bm), UInt32(bn), UInt32(bk), UInt32(tm), UInt32(tn)])
            try stream.dispatch(k, [bA, bB, bC, Binding(bBias.range, .read)], push: p.words,
                                groups: ((N + bn - 1) / bn, (M + bm - 1) / bm, batch))
        }
    }

    /// Allocates C and computes `act(op(A) · op(B) + bias)`.
    public func matmul(_ a: Tensor, _ b: Tensor, transA: Bool = false, transB: Bool = false,
                       bias: Tensor? = nil, activation: Activation = .none) throws -> Tensor {
        let M = transA ? a.shape[a.rank - 1] : a.shape[a.rank - 2]
        let N = transB ? b.shape[b.rank - 2] : b.shape[b.rank - 1]
        let batch = a.rank == 3 ? a.shape[0] : (b.rank == 3 ? b.shape[0] : nil)
        let c = try empty(batch.map { [$0, M, N] } ?? [M, N], dtype: a.dtype)
        try gemm(a, b, into: c, transA: transA, transB: transB, bias: bias, activation: activation)
        return c
    }
}
