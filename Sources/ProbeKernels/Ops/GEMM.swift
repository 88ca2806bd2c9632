import Logging
import ProbeShaders
import VulkanCompute

extension KernelContext {
    /// `C = act(alpha · op(A) · op(B) + beta · C + bias) ⊙ scale`, batched; with `residual`,
    /// `C += act(alpha · op(A) · op(B) + bias) ⊙ scale` (a transformer branch added to its
    /// residual stream, `scale` its LayerScale).
    ///
    /// - A: (..., M, K), or (..., K, M) with `transA`; B: (..., K, N), or (..., N, K) with `transB`
    ///   (PyTorch Linear weights). C: (..., M, N) with contiguous rows. Up to two leading batch axes
    ///   (e.g. (B, heads)); any strides (views of packed projections work). An operand without the
    ///   batch axes is shared by every batch (stride 0).
    /// - bias, scale: (N,), per column. Storage: f32 everywhere, f16 everywhere, or A and B f16 or
    ///   bf16 with C, bias and scale f32; accumulation is f32.
    /// - Operands beyond the binding limit are split over the batch axes, rows, columns, and K (the
    ///   pieces of K accumulate into C; bias and activation apply with the last one; not with
    ///   `residual`).
    public func gemm(_ a: Tensor, _ b: Tensor, into c: Tensor, transA: Bool = false, transB: Bool = false,
                     alpha: Float = 1, beta: Float = 0, bias: Tensor? = nil, activation: Activation = .none,
                     scale: Tensor? = nil, residual: Bool = false) throws {
        let op = "gemm"
        try checkDevice(op, a, b, c)
        for t in [bias, scale].compactMap({ $0 }) { try checkDevice(op, t) }
        let dtype = c.dtype
        let desc = "A \(a)\(transA ? "ᵀ" : ""), B \(b)\(transB ? "ᵀ" : ""), C \(c)"
        let inputs: DType = a.dtype
        guard dtype.isF32OrF16, a.dtype == b.dtype, inputs == dtype || ((inputs == .f16 || inputs == .bf16) && dtype == .f32),
              [bias, scale].allSatisfy({ $0.map { $0.dtype == dtype } ?? true }) else {
            throw OpError.dtype(op, "\(desc)\(bias.map { ", bias \($0)" } ?? ""): all f32, all f16, or A and B f16 or bf16 with C, bias and scale f32")
        }
        guard (2...4).contains(c.rank), a.rank == 2 || a.rank == c.rank, b.rank == 2 || b.rank == c.rank else {
            throw OpError.shape(op, "\(desc): ranks must be 2 to 4, and A and B either rank 2 or C's rank")
        }
        let (ra, rb, rc) = (a.rank, b.rank, c.rank)
        let (M, K) = transA ? (a.shape[ra - 1], a.shape[ra - 2]) : (a.shape[ra - 2], a.shape[ra - 1])
        let (Kb, N) = transB ? (b.shape[rb - 1], b.shape[rb - 2]) : (b.shape[rb - 2], b.shape[rb - 1])
        guard K == Kb, c.shape[rc - 2] == M, c.shape[rc - 1] == N else { throw OpError.shape(op, desc) }
        let batchDims = Array(c.shape.prefix(rc - 2))
        guard (ra == 2 || Array(a.shape.prefix(ra - 2)) == batchDims),
              (rb == 2 || Array(b.shape.prefix(rb - 2)) == batchDims) else {
            throw OpError.shape(op, "batch axes differ: \(desc)")
        }
        guard c.strides[rc - 1] == 1 else { throw OpError.shape(op, "C \(c) must have contiguous rows") }
        for t in [bias, scale].compactMap({ $0 }) where t.shape != [N] || !t.isContiguous {
            throw OpError.shape(op, "\(t) must be contiguous (\(N),) (bias and scale are per column of C \(c))")
        }
        if M == 0 || N == 0 || c.count == 0 { return }
        guard K > 0 else { throw OpError.unsupported(op, "K = 0 is not supported (\(desc))") }
        if let (pa, pb) = try packedAlongK(a, b, c, transA: transA, transB: transB, M: M, N: N, K: K, batch: batchDims.reduce(1, *)) {
            try gemm(pa, pb, into: c, transB: true, alpha: alpha, beta: beta, bias: bias, activation: activation, scale: scale, residual: residual)
            return
        }

        // Iteration space (batch₀, batch₁, M, N, K) and where each axis is in A, B, C, bias.
        func batchAxis(_ t: Tensor, _ i: Int) -> Int? { t.rank == rc && i < rc - 2 ? i : nil }
        var axes: [SplitAxis] = []
        // Operands A, B, C, then bias and scale when given (both vary along N only).
        let vectors = [bias, scale].compactMap { $0 }
        func along(_ a: Int?, _ b: Int?, _ c: Int?, _ vector: Int?) -> [Int?] { [a, b, c] + vectors.map { _ in vector } }
        for i in 0..<(rc - 2) { axes.append(SplitAxis(size: c.shape[i], axes: along(batchAxis(a, i), batchAxis(b, i), i, nil))) }
        axes.append(SplitAxis(size: M, axes: along(transA ? ra - 1 : ra - 2, nil, rc - 2, nil)))
        axes.append(SplitAxis(size: N, axes: along(nil, transB ? rb - 2 : rb - 1, rc - 1, 0)))
        // K pieces accumulate into C, which a residual GEMM cannot (C holds the stream).
        if !residual { axes.append(SplitAxis(size: K, axes: along(transA ? ra - 2 : ra - 1, transB ? rb - 1 : rb - 2, nil, nil))) }
        try forEachPiece(op, [a, b, c] + vectors, axes) { t, ranges in
            let k = residual ? 0..<K : ranges[ranges.count - 1]
            let first = k.lowerBound == 0, last = k.upperBound == K
            let pieceBias = bias == nil ? nil : t[3], pieceScale = scale == nil ? nil : t[3 + (bias == nil ? 0 : 1)]
            try gemmDispatch(t[0], t[1], t[2], transA: transA, transB: transB, alpha: alpha, beta: first ? beta : 1,
                             bias: last ? pieceBias : nil, activation: last ? activation : .none,
                             scale: last ? pieceScale : nil, residual: residual)
        }
    }

    /// On lavapipe, A and B transposed to be contiguous along K (C = A·Bᵀ, the float4-along-K
    /// path) when either is not, the plan as given has no K-unrolled float4 path (those run as
    /// fast), and the GEMM does enough multiply-adds per moved element to repay the 4×4-block
    /// transposes (`KernelVariants.gemmPackRatio`) over a K of 16 or more (below, the stores
    /// dominate and packing measured slower); nil to run as given. Measurements:
    /// docs/PERFORMANCE-HISTORY.md, "Packing along K".
    func packedAlongK(_ a: Tensor, _ b: Tensor, _ c: Tensor, transA: Bool, transB: Bool, M: Int, N: Int, K: Int, batch: Int) throws -> (Tensor, Tensor)? {
        guard variants.gemm == .cpu, variants.texelTwins, let ratio = variants.gemmPackRatio, K % 4 == 0, K >= 16 else { return nil }
        // Offsets modulo 4 as the bindings will have them (bindings start 16-byte aligned).
        if variants.gemmUnrolled, cpuPlan(a, b, c, transA: transA, transB: transB, offA: a.offset, offB: b.offset).vectorScore >= 2 { return nil }
        func swapLast(_ t: Tensor) throws -> Tensor {
            var order = Array(0..<t.rank)
            order.swapAt(t.rank - 1, t.rank - 2)
            return try t.permuted(order)
        }
        // A as (…, M, K) and B as (…, N, K): views whose last axis is K.
        let va = transA ? try swapLast(a) : a, vb = transB ? b : try swapLast(b)
        let packA = va.strides[va.rank - 1] != 1, packB = vb.strides[vb.rank - 1] != 1
        guard packA || packB, M >= 4, N >= 4 else { return nil }
        let moved = (packA ? va.count : 0) + (packB ? vb.count : 0)
        guard Double(M) * Double(N) * Double(K) * Double(batch) >= Double(ratio) * Double(moved) else { return nil }
        for (pack, v) in [(packA, va), (packB, vb)] where pack {
            guard BlockTranspose(v, Tensor(buffer: v.buffer, shape: v.shape, dtype: v.dtype)) != nil, fitsBinding(v) else { return nil }
        }
        func packed(_ v: Tensor) throws -> Tensor {
            let out = try empty(v.shape, dtype: v.dtype)
            try copy(v, into: out)   // the block transpose (checked above), labelled as a copy
            return out
        }
        return (packA ? try packed(va) : va, packB ? try packed(vb) : vb)
    }

    /// Whether an f16-input GEMM goes to the cooperative-matrix kernel: chosen for the device and
    /// checked once against the tiled kernel (a mismatch warns and turns it off).
    func useCoopmat() throws -> Bool {
        guard coopmat.enabled else { return false }
        if !coopmatChecked {
            coopmatChecked = true
            let result = try CooperativeMatrixGEMM.verify(self, candidate: { a, b, c in
                try self.gemmDispatch(a, b, c, transA: false, transB: false, alpha: 1, beta: 0, bias: nil, activation: .none,
                                      scale: nil, residual: false, path: .coopmat)
            }, reference: { a, b, c in
                try self.gemmDispatch(a, b, c, transA: false, transB: false, alpha: 1, beta: 0, bias: nil, activation: .none,
                                      scale: nil, residual: false, path: .tiled)
            })
            coopmat = result
            if result.warn { kernelLog.warning("cooperative-matrix GEMM: \(result.reason)") }
        }
        return coopmat.enabled
    }

    enum GEMMPath { case automatic, coopmat, tiled }

    /// One GEMM dispatch whose operands fit their bindings.
    func gemmDispatch(_ a: Tensor, _ b: Tensor, _ c: Tensor, transA: Bool, transB: Bool, alpha: Float, beta: Float,
                      bias: Tensor?, activation: Activation, scale: Tensor?, residual: Bool, path: GEMMPath = .automatic) throws {
        let op = "gemm"
        let M = c.shape[c.rank - 2], N = c.shape[c.rank - 1]
        let K = transA ? a.shape[a.rank - 2] : a.shape[a.rank - 1]
        let (bA, offA) = try bind(a, .read, op: op)
        let (bB, offB) = try bind(b, .read, op: op)
        let (bC, offC) = try bind(c, beta != 0 || residual ? .readWrite : .write, op: op)
        let (bBias, offBias) = try bind(bias, .read, op: op, orPlaceholder: bA)
        let (bScale, offScale) = try bind(scale, .read, op: op, orPlaceholder: bA)
        let inner = c.rank >= 3 ? c.shape[c.rank - 3] : 1
        let batch = c.shape.prefix(c.rank - 2).reduce(1, *)
        let st = GEMMStrides(a, b, c, transA: transA, transB: transB)
        let (sAo, sAh, sAi, sAk) = st.a, (sBo, sBh, sBk, sBn) = st.b, (sCo, sCh) = st.c
        let f16 = c.dtype == .f16, f16in = c.dtype == .f32 && a.dtype == .f16, bf16in = a.dtype == .bf16
        let bindings = [bA, bB, bC, bBias, bScale]
        if stream.profiling { stream.opFlops = 2 * Double(M) * Double(N) * Double(K) * Double(batch) }
        let halfInputs = a.dtype == .f16 && b.dtype == .f16
        let viaCoopmat = try halfInputs && (path == .coopmat || (path == .automatic && variants.gemm == .tiled && useCoopmat()))
        // Every GEMM kernel reads the same push block (gemm_common.glsl); the CPU-shaped one may
        // compute the transposed product and builds its own from its plan.
        let push = GemmCpuKernel.Push(M: M, N: N, K: K, batch: batch, offA: offA, offB: offB, offC: offC, offBias: offBias, offScale: offScale,
                                      sAb: sAo, sAi: sAi, sAk: sAk, sBb: sBo, sBk: sBk, sBn: sBn, sCb: sCo, sCi: c.strides[c.rank - 2],
                                      alpha: alpha, beta: beta, batchInner: inner, sAh: sAh, sBh: sBh, sCh: sCh)
        if viaCoopmat {
            let local = UInt32(CooperativeMatrixGEMM.subgroupsPerWorkgroup * device.capabilities.subgroupSize)
            let k = try kernel(GemmCoopmatKernel.self, f16 ? .f16 : .f16in,
                               .init(localSizeX: local, ACT: activation.rawValue, HAS_BIAS: bias != nil, HAS_SCALE: scale != nil, RESIDUAL: residual))
            try stream.dispatch(k, bindings, push: push, groups: ((N + 63) / 64, (M + 63) / 64, batch))
            return
        }
        switch path == .tiled ? .tiled : variants.gemm {
        case .cpu:
            let lanes = variants.cpuGEMM.lanes
            let plan = cpuPlan(a, b, c, transA: transA, transB: transB, offA: offA, offB: offB)
            let planned = GemmCpuKernel.Push(M: plan.M, N: plan.N, K: K, batch: batch, offA: plan.offA, offB: plan.offB, offC: offC, offBias: offBias,
                                             offScale: offScale, sAb: plan.a.outer, sAi: plan.a.i, sAk: plan.a.k, sBb: plan.b.outer, sBk: plan.b.k,
                                             sBn: plan.b.n, sCb: sCo, sCi: c.strides[c.rank - 2], alpha: alpha, beta: beta, batchInner: inner,
                                             sAh: plan.a.inner, sBh: plan.b.inner, sCh: sCh)
            let groups = ((plan.N + Int(plan.cols) - 1) / Int(plan.cols), (plan.M + Int(lanes * plan.rows) - 1) / Int(lanes * plan.rows), batch)
            // float4 stores along C's rows (lavapipe pays per store instruction and lane).
            let store4 = variants.gemmStore4 && [offC, sCo, sCh, c.strides[c.rank - 2]].allSatisfy { $0 % 4 == 0 }
                && (bias == nil || offBias % 4 == 0) && (scale == nil || offScale % 4 == 0)
                && (plan.swap ? plan.rows % 4 == 0 && plan.M % 4 == 0 : plan.cols % 4 == 0 && plan.N % 4 == 0)
            let (first, second) = plan.swap ? (bB, bA) : (bA, bB)
            if stream.profiling { stream.dispatchVariant = plan.label }
            // One spec and push block for either kernel (the texel twin shares them).
            let spec = GemmCpuKernel.Spec(localSizeX: lanes, ACT: activation.rawValue, HAS_BIAS: bias != nil, ROWS: plan.rows, COLS: plan.cols,
                                          VEC4_K: plan.vec4K, VEC4_A: plan.vec4A, HAS_SCALE: scale != nil, RESIDUAL: residual, VEC4_BN: plan.vec4BN,
                                          SWAP_C: plan.swap, VEC4_AM: plan.vec4AM, STORE4: store4, UNROLL_K4: variants.gemmUnrolled, VEC4_BK: plan.vec4BK,
                                          K_TEXELS: variants.gemmKTexels)
            if variants.texelTwins, let tA = texelBinding(first, a.dtype), let tB = texelBinding(second, b.dtype) {
                let k = try kernel(GemmCpuKernel.self, f16 ? .texel_f16 : f16in ? .texel_f16in : bf16in ? .texel_bf16in : .texel, spec)
                try stream.dispatch(k, [tA, tB, bC, bBias, bScale], push: planned, groups: groups)
                return
            }
            let k = try kernel(GemmCpuKernel.self, f16 ? .f16 : f16in ? .f16in : bf16in ? .bf16in : .base, spec)
            try stream.dispatch(k, [first, second, bC, bBias, bScale], push: planned, groups: groups)
        case .tiled:
            // 64×64 tiles (256 invocations), or 64×32 where the device runs at most 128 per
            // workgroup (the Vulkan minimum); shared memory 8 or 6 KiB, under the minimum's 16.
            let (bm, bk, tm, tn) = (64, 16, 4, 4)
            let bn = device.capabilities.maxComputeWorkGroupInvocations >= 256 ? 64 : 32
            let k = try kernel(GemmTiledKernel.self, f16 ? .f16 : f16in ? .f16in : bf16in ? .bf16in : .base,
                               .init(localSizeX: UInt32((bm / tm) * (bn / tn)), ACT: activation.rawValue, HAS_BIAS: bias != nil,
                                     BM: UInt32(bm), BN: UInt32(bn), BK: UInt32(bk), TM: UInt32(tm), TN: UInt32(tn),
                                     HAS_SCALE: scale != nil, RESIDUAL: residual))
            try stream.dispatch(k, bindings, push: push, groups: ((N + bn - 1) / bn, (M + bm - 1) / bm, batch))
        }
    }

    /// The CPU-shaped GEMM's plan for these operands (offsets in elements, as bound).
    func cpuPlan(_ a: Tensor, _ b: Tensor, _ c: Tensor, transA: Bool, transB: Bool, offA: Int, offB: Int) -> CPUGEMMPlan {
        let M = c.shape[c.rank - 2], N = c.shape[c.rank - 1]
        let K = transA ? a.shape[a.rank - 2] : a.shape[a.rank - 1]
        let st = GEMMStrides(a, b, c, transA: transA, transB: transB)
        let (lanes, maxRows, maxCols) = variants.cpuGEMM
        let unrolled = variants.gemmUnrolled, bk = variants.gemmBK
        func form(_ swap: Bool, _ rows: UInt32, _ cols: UInt32) -> CPUGEMMPlan {
            CPUGEMMPlan(swap: swap, M: M, N: N, K: K, offA: offA, offB: offB, a: st.a, b: st.b, lanes: lanes, maxRows: rows, maxCols: cols,
                        unrolled: unrolled, bk: bk)
        }
        let plan = variants.cpuGEMMSwapRule.map { form($0, maxRows, maxCols) } ?? CPUGEMMPlan.choose(M: M, N: N) { form($0, maxRows, maxCols) }
        // The float4-along-K path may have its own tile (`KernelVariants.cpuGEMMAlongK`).
        if plan.vec4K, let t = variants.cpuGEMMAlongK { return form(plan.swap, t.rows, t.cols) }
        return plan
    }

    /// `binding` read as a uniform texel buffer of four-element texels, its range widened to whole
    /// texels; nil where the buffer ends inside the last texel (the storage-buffer kernel then).
    func texelBinding(_ binding: Binding, _ dtype: DType) -> Binding? {
        texelBinding(binding, format: texelFormat(dtype, elements: 4))
    }

    /// How texels of one or four elements of `dtype` are read: f16 as halves, bf16 as 16-bit
    /// integers (widened by the shader), f32 as floats — or, one at a time, as bits (R32UI), so
    /// that copies move every pattern exactly.
    func texelFormat(_ dtype: DType, elements: Int) -> TexelFormat {
        switch (dtype, elements) {
        case (.f16, 1): return .r16f
        case (.f16, _): return .rgba16f
        case (.bf16, 1): return .r16ui
        case (.bf16, _): return .rgba16ui
        case (_, 1): return .r32ui
        default: return .rgba32f
        }
    }

    /// `binding` read as a uniform texel buffer of `format`, widened to whole texels (nil where
    /// that would pass the end of its buffer, the offset is misaligned or the view would hold more
    /// texels than the device's maxTexelBufferElements — 65536 on SwiftShader, the Vulkan minimum:
    /// every caller then takes its storage-buffer kernel).
    func texelBinding(_ binding: Binding, format: TexelFormat) -> Binding? {
        let r = binding.range
        let size = (r.size + format.bytes - 1) / format.bytes * format.bytes
        guard size / format.bytes <= device.capabilities.maxTexelBufferElements,
              r.offset % device.capabilities.minTexelBufferOffsetAlignment == 0, r.offset + size <= r.buffer.size,
              let widened = try? r.buffer.range(offset: r.offset, size: size) else { return nil }
        return Binding(widened, .read, texel: format)
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

/// A GEMM's strides: A's (batch outer, batch inner, along M, along K), B's (…, along K, along
/// N), C's batch strides; absent batch axes have stride 0.
struct GEMMStrides {
    let a: (Int, Int, Int, Int), b: (Int, Int, Int, Int), c: (Int, Int)

    init(_ a: Tensor, _ b: Tensor, _ c: Tensor, transA: Bool, transB: Bool) {
        func batch(_ t: Tensor) -> (Int, Int) {
            guard t.rank == c.rank else { return (0, 0) }
            switch t.rank { case 4: return (t.strides[0], t.strides[1]); case 3: return (0, t.strides[0]); default: return (0, 0) }
        }
        let r = a.rank, rb = b.rank
        let (sAi, sAk) = transA ? (a.strides[r - 1], a.strides[r - 2]) : (a.strides[r - 2], a.strides[r - 1])
        let (sBk, sBn) = transB ? (b.strides[rb - 1], b.strides[rb - 2]) : (b.strides[rb - 2], b.strides[rb - 1])
        let (ao, ah) = batch(a), (bo, bh) = batch(b)
        self.a = (ao, ah, sAi, sAk); self.b = (bo, bh, sBk, sBn); self.c = batch(c)
    }
}

/// How the CPU-shaped GEMM computes one dispatch: directly, or transposed (Cᵀ = Bᵀ·Aᵀ with A and
/// B exchanged, M and N too), its tile and its float4 paths.
struct CPUGEMMPlan {
    let swap: Bool
    let M: Int, N: Int
    let offA: Int, offB: Int
    /// Strides of A (batch outer, batch inner, along M, along K) and of B (…, along K, along N).
    let a: (outer: Int, inner: Int, i: Int, k: Int)
    let b: (outer: Int, inner: Int, k: Int, n: Int)
    let rows: UInt32, cols: UInt32
    let vec4K: Bool, vec4BN: Bool, vec4A: Bool, vec4AM: Bool, vec4BK: Bool

    init(swap: Bool, M: Int, N: Int, K: Int, offA: Int, offB: Int, a sa: (Int, Int, Int, Int), b sb: (Int, Int, Int, Int),
         lanes: UInt32, maxRows: UInt32, maxCols: UInt32, unrolled: Bool = true, bk: Bool = true) {
        self.swap = swap
        (self.M, self.N) = swap ? (N, M) : (M, N)
        (self.offA, self.offB) = swap ? (offB, offA) : (offA, offB)
        a = swap ? (sb.0, sb.1, sb.3, sb.2) : (sa.0, sa.1, sa.2, sa.3)
        b = swap ? (sa.0, sa.1, sa.3, sa.2) : (sb.0, sb.1, sb.2, sb.3)
        // Rows per lane: as few workgroup rows as maxRows allows, balanced so that the last is
        // nearly full (M 196: 2 × 8 lanes × 13 rows = 208, not 2 × 128 = 256: 25 → 31–35 GFLOP/s
        // for dX = dY·W at 196×768×768); in fours where float4 gathers along M may apply. (More
        // pipeline variants — each a compile on first use — is the price.)
        let groupRows = (self.M + Int(lanes * maxRows) - 1) / Int(lanes * maxRows)
        var r = UInt32((self.M + groupRows * Int(lanes) - 1) / (groupRows * Int(lanes)))
        if a.i == 1 { r = min(maxRows, (r + 3) / 4 * 4) }
        rows = r
        // Columns shared by a workgroup: no more than the transposed problem has, in fours.
        cols = swap ? min(maxCols, UInt32((self.N + 3) / 4 * 4)) : maxCols
        // float4 loads along K when both operands are K-contiguous and 16-byte aligned (in elements: 4).
        let alignedA = [self.offA, a.i, a.outer, a.inner].allSatisfy { $0 % 4 == 0 }
        let aligned4 = K % 4 == 0 && alignedA
        vec4K = aligned4 && a.k == 1 && b.k == 1 && [self.offB, b.n, b.outer, b.inner].allSatisfy { $0 % 4 == 0 }
        // float4 loads along N of a row-major B (the aggregation A·X, dY·W).
        vec4BN = !vec4K && b.n == 1 && self.N % 4 == 0 && cols % 4 == 0 && [self.offB, b.k, b.outer, b.inner].allSatisfy { $0 % 4 == 0 }
        // The float4-along-N path's four-step loop ends with single steps: there any K will do
        // (P·V over 197 keys with P's rows padded to 200).
        vec4A = !vec4K && a.k == 1 && (aligned4 || (alignedA && vec4BN && unrolled))
        // float4 gathers along M of an A contiguous along M (dW = dYᵀ·X; Xᵀ of a transposed A·X),
        // with the N-vector path or scalar B.
        vec4AM = !vec4K && !vec4A && a.i == 1 && self.M % 4 == 0 && rows % 4 == 0 && [self.offA, a.k, a.outer, a.inner].allSatisfy { $0 % 4 == 0 }
        // float4 loads along K of B alone (A along M or strided), K four steps at a time.
        vec4BK = unrolled && bk && !vec4K && !vec4BN && !vec4A && b.k == 1 && [self.offB, b.n, b.outer, b.inner].allSatisfy { $0 % 4 == 0 }
    }

    /// The float4 paths and form, as the profile shows them: K4 (A and B along K), N4 (B along
    /// N), A4 (A along K), M4 (A along M), BK4 (B alone along K), "ᵀ" the transposed form.
    var label: String {
        let paths = [(vec4K, "K4"), (vec4BN, "N4"), (vec4A, "A4"), (vec4AM, "M4"), (vec4BK, "BK4")].filter(\.0).map(\.1)
        return (paths.isEmpty ? "scalar" : paths.joined(separator: "·")) + (swap ? " ᵀ" : "")
    }

    /// How much of the work runs on float4 paths (to choose between the two forms).
    var vectorScore: Int { vec4K ? 3 : (vec4BN && (vec4A || vec4AM)) || (vec4BK && vec4AM) ? 2 : vec4BN || vec4A || vec4AM || vec4BK ? 1 : 0 }

    /// The direct form C = A·B, or the transposed one Cᵀ = Bᵀ·Aᵀ (lanes along C's columns), by
    /// measurement on lavapipe (the numbers: docs/PERFORMANCE-HISTORY.md, "The CPU GEMM's two
    /// forms"): few rows of C (a small batch through a Linear) run transposed, unless the direct
    /// form has more float4 paths and every lane two rows or more (16+), or C has rows enough
    /// (128+) and the transposed form no more float4 paths; B along K transposed against B along N
    /// direct: transposed only below 8 rows per lane.
    static func choose(M: Int, N: Int, _ form: (Bool) -> CPUGEMMPlan) -> CPUGEMMPlan {
        let direct = form(false)
        guard M <= 256 && N >= M else { return direct }
        let swapped = form(true)
        if M >= 16 && direct.vectorScore > swapped.vectorScore { return direct }
        if swapped.vec4BK && direct.vec4BN && direct.vectorScore == swapped.vectorScore { return direct.rows >= 8 ? direct : swapped }
        return M < 128 || swapped.vectorScore >= direct.vectorScore ? swapped : direct
    }
}
