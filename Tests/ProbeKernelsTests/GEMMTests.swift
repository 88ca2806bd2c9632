import Foundation
import ProbeTestSupport
import Testing
@testable import ProbeKernels
@testable import VulkanCompute

struct GEMMCase: CustomStringConvertible, Sendable {
    var batch: Int, M: Int, N: Int, K: Int
    var transA = false, transB = false, batchA = true, batchB = true
    var bias = false, act: Activation = .none, beta: Double = 0, alpha: Double = 1
    /// Per-column scale (LayerScale) and the residual form C += branch.
    var scale = false, residual = false
    var description: String { "b\(batch) \(M)x\(N)x\(K) tA\(transA) tB\(transB) bA\(batchA) bB\(batchB) bias\(bias) \(act) β\(beta) scale\(scale) residual\(residual)" }
}

let gemmCases: [GEMMCase] = [
    GEMMCase(batch: 1, M: 1, N: 1, K: 1),
    GEMMCase(batch: 1, M: 7, N: 5, K: 3, bias: true),
    GEMMCase(batch: 1, M: 197, N: 33, K: 17, transB: true, bias: true, act: .gelu),
    GEMMCase(batch: 2, M: 13, N: 197, K: 64, transA: true, act: .quickGELU),
    GEMMCase(batch: 3, M: 65, N: 63, K: 129, transA: true, transB: true, batchB: false, act: .tanhGELU, beta: 0.5, alpha: 0.75),
    GEMMCase(batch: 2, M: 1, N: 768, K: 7, batchA: false, bias: true, act: .relu),
    GEMMCase(batch: 1, M: 64, N: 64, K: 64, beta: -1, alpha: 2),
    GEMMCase(batch: 4, M: 31, N: 17, K: 197, transB: true),
    // K-contiguous operands with K % 4 == 0: the float4 path of the CPU-shaped kernel.
    GEMMCase(batch: 2, M: 67, N: 20, K: 64, transB: true, bias: true, act: .gelu),
    GEMMCase(batch: 1, M: 197, N: 35, K: 132, transB: true, batchB: false),
    // Only A contiguous along K (B row-major (K, N)): the float4-A path.
    GEMMCase(batch: 3, M: 33, N: 70, K: 196, bias: true),
    GEMMCase(batch: 1, M: 8, N: 9, K: 12, transA: false, transB: false, beta: 1),
    // Transformer epilogues: fc2 with LayerScale added to the residual stream; proj without.
    GEMMCase(batch: 1, M: 67, N: 48, K: 192, transB: true, bias: true, scale: true, residual: true),
    GEMMCase(batch: 2, M: 13, N: 20, K: 36, transB: true, bias: true, alpha: 0.5, residual: true),
    GEMMCase(batch: 1, M: 9, N: 33, K: 16, transB: true, act: .gelu, scale: true),
    // A contiguous along M (dW = dYᵀ·X) with a row-major B: float4 gathers along M, a last tile
    // of rows past M (68 of 128), K not a multiple of 4, β; and M beyond the transposed form's 256.
    GEMMCase(batch: 2, M: 68, N: 36, K: 13, transA: true, bias: true),
    GEMMCase(batch: 1, M: 260, N: 12, K: 7, transA: true, beta: 0.5),
    // A contiguous along M with B read one element at a time (transposed in the direct form; an
    // aggregation A·X in the transposed one): float4 gathers along M without the N-vector path.
    GEMMCase(batch: 2, M: 36, N: 13, K: 11, transA: true, transB: true, bias: true),
    GEMMCase(batch: 2, M: 12, N: 40, K: 25, bias: true),
    // Operands that the CPU-shaped GEMM may first transpose to be contiguous along K (4×4 blocks:
    // both dimensions of a packed operand multiples of 4, K too): A, B, both; shared B; residual.
    GEMMCase(batch: 2, M: 20, N: 24, K: 16, transA: true, bias: true),
    GEMMCase(batch: 3, M: 12, N: 36, K: 28, transA: true, transB: true, batchB: false, beta: 0.5),
    GEMMCase(batch: 1, M: 44, N: 12, K: 20, bias: true, scale: true, residual: true),
    // A along K and B along N (dX = dY·W): the K-unrolled float4-along-N path with float4 A.
    GEMMCase(batch: 2, M: 9, N: 28, K: 24, bias: true),
]

@Suite struct GEMMTests {
    /// Runs a case with storage `dtype` (f32 or f16 everywhere), or with `inputs` f16 or bf16: A
    /// and B in that type, C, bias and scale in f32 (the reference then uses the same rounded
    /// inputs, so the fp32 bound applies). bf16 operands are rounded on the device from f32 (as
    /// `--head-precision bf16` does), the reference's by `bf16Rounded`.
    /// `swap`: the CPU-shaped kernel's transposed form (Cᵀ = Bᵀ·Aᵀ, stored back into C) forced on
    /// or off; nil leaves the device's rule.
    /// `texel: false` keeps the CPU-shaped kernel on storage buffers where the device would read A
    /// and B as texel buffers. `pack`: operands not contiguous along K transposed first wherever
    /// the layout allows (true; the float4-along-N path then steps K one at a time), never (false),
    /// or by the device's rule (nil: large GEMMs without the K-unrolled float4-along-N path).
    /// (It also stores C one element at a time: the scalar stores stay covered.)
    func run(_ tc: GEMMCase, kind: KernelVariants.GEMMKind, dtype: DType, inputs: DType? = nil, maxBindingBytes: Int? = nil,
             swap: Bool? = nil, texel: Bool = true, pack: Bool? = nil, kTexels: UInt32? = nil,
             alongK: (rows: UInt32, cols: UInt32)? = nil) throws {
        // 16-bit cases on devices with 16-bit storage (their refusal elsewhere: ShaderRequirementsTests).
        if dtype != .f32 || inputs != nil, !deviceHas16BitStorage { return }
        let ctx = try makeContext(maxBindingBytes: maxBindingBytes) {
            $0.gemm = kind; $0.cpuGEMMSwapRule = swap; $0.texelTwins = $0.texelTwins && texel; $0.gemmStore4 = texel
            if let kTexels { $0.gemmKTexels = kTexels }
            if let alongK { $0.cpuGEMMAlongK = alongK }
            if let pack { $0.gemmPackRatio = pack ? 1 : nil; $0.gemmUnrolled = !pack }
        }
        let seed = UInt64(tc.M * 1000 + tc.N * 10 + tc.K)
        var a = randomValues(tc.batch * tc.M * tc.K, seed: seed)
        var b = randomValues(tc.batch * tc.K * tc.N, seed: seed + 1)
        var c0 = randomValues(tc.batch * tc.M * tc.N, seed: seed + 2)
        var bias = randomValues(tc.N, seed: seed + 3)
        var scale = randomValues(tc.N, seed: seed + 4, lo: 0.5, hi: 1.5)
        if !tc.batchA { a = Array(a.prefix(tc.M * tc.K)) }
        if !tc.batchB { b = Array(b.prefix(tc.K * tc.N)) }
        let (a0, b0) = (a, b)
        let inputsF16 = inputs == .f16
        if dtype == .f16 || inputsF16 { a = f16Rounded(a); b = f16Rounded(b) }
        if inputs == .bf16 { a = bf16Rounded(a); b = bf16Rounded(b) }
        if dtype == .f16 { c0 = f16Rounded(c0); bias = f16Rounded(bias); scale = f16Rounded(scale) }
        let ba = tc.batchA ? tc.batch : 1, bb = tc.batchB ? tc.batch : 1
        // Device layouts: stored transposed when asked.
        let aStored = tc.transA ? Reference.transpose(a, batch: ba, rows: tc.M, cols: tc.K) : a
        let bStored = tc.transB ? Reference.transpose(b, batch: bb, rows: tc.K, cols: tc.N) : b
        let aShape2 = tc.transA ? [tc.K, tc.M] : [tc.M, tc.K]
        let bShape2 = tc.transB ? [tc.N, tc.K] : [tc.K, tc.N]
        func up(_ v: [Double], _ s: [Int], f16: Bool = dtype == .f16) throws -> Tensor {
            f16 ? try ctx.tensorF16(v.map { Float($0) }, s) : try ctx.tensor(v.map { Float($0) }, s)
        }
        // bf16: the unrounded f32 values, rounded by the copy kernel.
        func operand(_ v: [Double], _ unrounded: [Double], _ s: [Int]) throws -> Tensor {
            inputs == .bf16 ? try ctx.contiguous(try up(unrounded, s, f16: false), dtype: .bf16) : try up(v, s, f16: dtype == .f16 || inputsF16)
        }
        let ta = try operand(aStored, tc.transA ? Reference.transpose(a0, batch: ba, rows: tc.M, cols: tc.K) : a0,
                             tc.batchA && tc.batch > 1 ? [tc.batch] + aShape2 : aShape2)
        let tb = try operand(bStored, tc.transB ? Reference.transpose(b0, batch: bb, rows: tc.K, cols: tc.N) : b0,
                             tc.batchB && tc.batch > 1 ? [tc.batch] + bShape2 : bShape2)
        let cShape = tc.batch > 1 ? [tc.batch, tc.M, tc.N] : [tc.M, tc.N]
        let tcOut = try poisoned(ctx, cShape, dtype: dtype)
        if tc.beta != 0 || tc.residual {
            let initial = try up(c0, cShape)
            try ctx.stream.copy(from: try initial.buffer.range(offset: 0, size: c0.count * dtype.size),
                                to: try tcOut.buffer.range(offset: 0, size: c0.count * dtype.size))
        }
        let tbias = tc.bias ? try up(bias, [tc.N]) : nil
        let tscale = tc.scale ? try up(scale, [tc.N]) : nil
        try ctx.gemm(ta, tb, into: tcOut, transA: tc.transA, transB: tc.transB, alpha: Float(tc.alpha), beta: Float(tc.beta),
                     bias: tbias, activation: tc.act, scale: tscale, residual: tc.residual)
        let got = try ctx.read(tcOut)
        var want = Reference.gemm(a, b, c: c0, batch: tc.batch, M: tc.M, N: tc.N, K: tc.K, batchA: tc.batchA, batchB: tc.batchB,
                                  alpha: tc.alpha, beta: tc.residual ? 0 : tc.beta, bias: tc.bias ? bias : nil, activation: tc.act)
        for i in want.indices {
            if tc.scale { want[i] *= scale[i % tc.N] }
            if tc.residual { want[i] += c0[i] }
        }
        let err = relativeError(got, want)
        #expect(err <= (dtype == .f16 ? fp16Tolerance : fp32Tolerance), "\(kind) \(dtype) \(tc): relative error \(err)")
        try expectGuardIntact(ctx, tcOut)
        expectNoValidationMessages(ctx)
    }

    // The CPU-shaped kernel in both forms for every case: as written and transposed.
    // (nil: the device's own choice between them.)
    @Test(arguments: gemmCases, [nil, false, true] as [Bool?]) func cpuShapedF32(_ tc: GEMMCase, swap: Bool?) throws { try run(tc, kind: .cpu, dtype: .f32, swap: swap) }
    @Test(arguments: gemmCases) func tiledF32(_ tc: GEMMCase) throws { try run(tc, kind: .tiled, dtype: .f32) }
    @Test(arguments: gemmCases, [false, true]) func cpuShapedF16(_ tc: GEMMCase, swap: Bool) throws { try run(tc, kind: .cpu, dtype: .f16, swap: swap) }
    @Test(arguments: gemmCases) func tiledF16(_ tc: GEMMCase) throws { try run(tc, kind: .tiled, dtype: .f16) }
    @Test(arguments: gemmCases, [false, true]) func cpuShapedF16Inputs(_ tc: GEMMCase, swap: Bool) throws {
        try run(tc, kind: .cpu, dtype: .f32, inputs: .f16, swap: swap)
    }
    @Test(arguments: gemmCases) func tiledF16Inputs(_ tc: GEMMCase) throws { try run(tc, kind: .tiled, dtype: .f32, inputs: .f16) }
    // bf16 operands (--head-precision bf16): texel and storage-buffer CPU kernels, both forms, and tiled.
    @Test(arguments: gemmCases, [false, true]) func cpuShapedBF16Inputs(_ tc: GEMMCase, swap: Bool) throws {
        try run(tc, kind: .cpu, dtype: .f32, inputs: .bf16, swap: swap)
    }
    @Test(arguments: gemmCases) func cpuShapedStorageBuffersBF16Inputs(_ tc: GEMMCase) throws {
        try run(tc, kind: .cpu, dtype: .f32, inputs: .bf16, texel: false)
    }
    @Test(arguments: gemmCases) func tiledBF16Inputs(_ tc: GEMMCase) throws { try run(tc, kind: .tiled, dtype: .f32, inputs: .bf16) }
    // Every eligible operand transposed to be contiguous along K first (the rule for large GEMMs),
    // in each storage, and never (the unpacked paths, whatever the device's rule).
    @Test(arguments: gemmCases, [DType.f32, .f16]) func cpuShapedPackedAlongK(_ tc: GEMMCase, dtype: DType) throws {
        try run(tc, kind: .cpu, dtype: dtype, pack: true)
    }
    @Test(arguments: gemmCases, [DType.f16, .bf16]) func cpuShapedPackedAlongKHalfInputs(_ tc: GEMMCase, inputs: DType) throws {
        try run(tc, kind: .cpu, dtype: .f32, inputs: inputs, pack: true)
    }
    @Test(arguments: gemmCases) func cpuShapedUnpacked(_ tc: GEMMCase) throws { try run(tc, kind: .cpu, dtype: .f32, pack: false) }
    // The float4-along-K path one texel per visit and three (the default two is every case above),
    // each with its single-texel tail where K/4 is not a multiple.
    @Test(arguments: gemmCases, [1, 3] as [UInt32]) func cpuShapedKTexels(_ tc: GEMMCase, kTexels: UInt32) throws {
        try run(tc, kind: .cpu, dtype: .f32, kTexels: kTexels)
    }

    /// The float4-along-K path with its own tile, as Mesa 25's lavapipe gets it (4 rows per lane,
    /// 16 columns, one texel per visit), and another (8 × 8, two texels): every case, both forms.
    @Test(arguments: gemmCases, [false, true]) func cpuShapedAlongKTile(_ tc: GEMMCase, swap: Bool) throws {
        try run(tc, kind: .cpu, dtype: .f32, swap: swap, kTexels: 1, alongK: (4, 16))
        try run(tc, kind: .cpu, dtype: .f32, swap: swap, kTexels: 2, alongK: (8, 8))
    }

    /// The Linear's plan takes that tile only on the float4-along-K path; Mesa 25's lavapipe gets
    /// it by default, 22.3's (and GPUs) not.
    @Test func alongKTileDefaults() throws {
        let ctx = try makeContext { $0.cpuGEMMAlongK = (4, 16) }
        try #require(ctx.variants.cpuShaped, "the CPU GEMM's plan (lavapipe)")
        let x = try ctx.empty([64, 32]), w = try ctx.empty([24, 32]), y = try ctx.empty([64, 24])  // 2 × 8 lanes × 4 rows
        let linear = ctx.cpuPlan(x, w, y, transA: false, transB: true, offA: 0, offB: 0)
        #expect(linear.vec4K && linear.rows == 4 && linear.cols == 16, "\(linear.label) \(linear.rows)×\(linear.cols)")
        let b = try ctx.empty([32, 24])
        let rowMajorB = ctx.cpuPlan(x, b, y, transA: false, transB: false, offA: 0, offB: 0)
        #expect(!rowMajorB.vec4K && rowMajorB.cols == ctx.variants.cpuGEMM.cols)
        var caps = ctx.device.capabilities
        caps.name = "llvmpipe (LLVM 15.0.6, 256 bits)"   // the tuning is lavapipe's, whichever device runs this
        caps.deviceType = "cpu"
        caps.driverInfo = "Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6)"
        let v25 = KernelVariants(for: caps, selection: .cpu)
        #expect(v25.cpuGEMMAlongK.map { [$0.rows, $0.cols] } == [4, 16] && v25.gemmKTexels == 1)
        caps.driverInfo = "Mesa 22.3.6 (LLVM 15.0.6)"
        let v22 = KernelVariants(for: caps, selection: .cpu)
        #expect(v22.cpuGEMMAlongK == nil && v22.gemmKTexels == 2)
        caps.driverInfo = "545.29.06"
        #expect(caps.mesaVersion == nil)
        var tuning = KernelTuning(environment: ["VKPROBE_CPU_GEMM_K4": "8,24"])
        #expect(KernelVariants(for: caps, selection: .cpu, tuning: tuning).cpuGEMMAlongK.map { [$0.rows, $0.cols] } == [8, 24])
        tuning = KernelTuning(environment: ["VKPROBE_CPU_GEMM_K4": "0,24"])
        #expect(tuning.cpuGEMMAlongK == nil)
        expectNoValidationMessages(ctx)
    }

    /// Which operands are packed: those not contiguous along K whose transpose the 4×4-block
    /// kernel can do, when the multiply-adds per moved element reach the ratio.
    /// With the K-unrolled float4-along-N path (the default), operands it reads are not packed.
    @Test(arguments: [false, true]) func packingRule(unrolled: Bool) throws {
        let ctx = try makeContext { $0.gemm = .cpu; $0.gemmPackRatio = 16; $0.gemmUnrolled = unrolled }
        try #require(ctx.variants.texelTwins, "lavapipe reads GEMM operands as texel buffers")
        func packs(_ a: [Int], _ b: [Int], transA: Bool, transB: Bool) throws -> (Bool, Bool)? {
            let ta = try ctx.empty(a), tb = try ctx.empty(b)
            let M = transA ? a[a.count - 1] : a[a.count - 2], K = transA ? a[a.count - 2] : a[a.count - 1]
            let N = transB ? b[b.count - 2] : b[b.count - 1]
            let tc = try ctx.empty([M, N])
            guard let (pa, pb) = try ctx.packedAlongK(ta, tb, tc, transA: transA, transB: transB, M: M, N: N, K: K, batch: 1) else { return nil }
            return (pa.buffer !== ta.buffer, pb.buffer !== tb.buffer)
        }
        // Multiply-adds per moved element: M·N / (M + N) with both packed, M with B, N with A.
        // dW = dYᵀ·X and dX = dY·W: B contiguous along N, A along M or K; then B along K with A
        // along M (the unrolled paths).
        #expect(try packs([16, 64], [16, 48], transA: true, transB: false).map { [$0.0, $0.1] } == (unrolled ? nil : [true, true]))
        #expect(try packs([64, 16], [16, 48], transA: false, transB: false).map { [$0.0, $0.1] } == (unrolled ? nil : [false, true]))
        #expect(try packs([16, 64], [48, 16], transA: true, transB: true).map { [$0.0, $0.1] } == (unrolled ? nil : [true, false]))  // B along K, A along M
        #expect(try packs([32, 16], [24, 16], transA: false, transB: true) == nil)              // already K-contiguous
        #expect(try packs([32, 18], [18, 24], transA: false, transB: false) == nil)             // K % 4 ≠ 0
        #expect(try packs([32, 16], [16, 26], transA: false, transB: false) == nil)             // N % 4 ≠ 0: no block transpose
        #expect(try packs([4, 32], [4, 24], transA: true, transB: false) == nil)                // 32·24 / 56 < 16
        #expect(try packs([12, 256], [12, 256], transA: true, transB: false) == nil)            // K < 16
        expectNoValidationMessages(ctx)
    }

    // The CPU-shaped kernel with A and B as storage buffers (the texel kernel's fallback, and the
    // kernel wherever texel buffers are off).
    @Test(arguments: gemmCases, [false, true]) func cpuShapedStorageBuffersF32(_ tc: GEMMCase, swap: Bool) throws {
        try run(tc, kind: .cpu, dtype: .f32, swap: swap, texel: false)
    }
    @Test(arguments: gemmCases) func cpuShapedStorageBuffersF16(_ tc: GEMMCase) throws { try run(tc, kind: .cpu, dtype: .f16, texel: false) }

    /// On lavapipe, operands whose buffers hold whole float4 texels are read as texel buffers (the
    /// cases above then run that kernel), others fall back to storage buffers; both give the product.
    @Test func texelKernelWhereOperandsAllowIt() throws {
        let ctx = try makeContext { $0.gemm = .cpu }
        try #require(ctx.variants.texelTwins, "lavapipe offers uniform texel buffers")
        for (M, N, K, texel) in [(12, 20, 8, true), (7, 5, 3, false)] {
            let av = randomValues(M * K, seed: 5), bv = randomValues(K * N, seed: 6)
            let a = try ctx.tensor(av.map(Float.init), [M, K]), b = try ctx.tensor(bv.map(Float.init), [K, N])
            var c: Tensor?
            let report = try ctx.profile { c = try ctx.matmul(a, b) }
            let kernels = report.rows.map(\.kernel)
            #expect(kernels == [texel ? "gemm_cpu_texel" : "gemm_cpu"], "\(M)×\(N)×\(K): \(kernels)")
            let want = Reference.gemm(av, bv, batch: 1, M: M, N: N, K: K, batchA: true, batchB: true)
            #expect(relativeError(try ctx.read(c!), want) <= fp32Tolerance)
        }
        expectNoValidationMessages(ctx)
    }

    /// Views at offsets that are not 16-byte aligned (rows 3... of a matrix, a column slice) are
    /// read correctly (the float4 path must not be taken for them).
    @Test(arguments: [(KernelVariants.GEMMKind.cpu, false), (.cpu, true), (.tiled, false)])
    func unalignedViews(kind: KernelVariants.GEMMKind, swap: Bool) throws {
        let ctx = try makeContext { $0.gemm = kind; $0.cpuGEMMSwapRule = swap }
        let (M, N, K) = (9, 6, 8)
        let big = randomValues((M + 3) * (K + 2), seed: 7), w = randomValues(N * K, seed: 8)
        let tBig = try ctx.tensor(big.map { Float($0) }, [M + 3, K + 2])
        let a = try tBig.slice(axis: 0, 3..<(M + 3)).slice(axis: 1, 1..<(K + 1))   // offset 3*(K+2)+1, row stride K+2
        let tw = try ctx.tensor(w.map { Float($0) }, [N, K])
        let out = try poisoned(ctx, [M, N])
        try ctx.gemm(a, tw, into: out, transB: true)
        var logicalA: [Double] = []
        for i in 0..<M { for k in 0..<K { logicalA.append(big[(i + 3) * (K + 2) + k + 1]) } }
        let want = Reference.gemm(logicalA, Reference.transpose(w, batch: 1, rows: N, cols: K), batch: 1, M: M, N: N, K: K, batchA: true, batchB: true)
        #expect(relativeError(try ctx.read(out), want) <= fp32Tolerance)
        try expectGuardIntact(ctx, out)
        expectNoValidationMessages(ctx)
    }

    /// A with K not a multiple of 4 but rows padded to one (attention's probabilities on CPU
    /// devices) times a row-major B: the float4-along-N path reads A as float4s along K and ends
    /// with single steps (the plan must say A4, and every K from 4n+1 to 4n+3 must be right).
    @Test(arguments: [13, 14, 15, 197]) func paddedRowsAlongK(K: Int) throws {
        let ctx = try makeContext { $0.gemm = .cpu; $0.cpuGEMMSwapRule = false }
        let (batch, M, N, row) = (2, 21, 24, (K + 3) / 4 * 4)
        let stored = randomValues(batch * M * row, seed: UInt64(K)), bv = randomValues(batch * K * N, seed: UInt64(K) + 1)
        let padded = try ctx.tensor(stored.map { Float($0) }, [batch, M, row])
        let a = Tensor(buffer: padded.buffer, offset: padded.offset, shape: [batch, M, K], strides: [M * row, row, 1])
        let b = try ctx.tensor(bv.map { Float($0) }, [batch, K, N])
        let out = try poisoned(ctx, [batch, M, N])
        #expect(ctx.cpuPlan(a, b, out, transA: false, transB: false, offA: 0, offB: 0).label == "N4·A4")
        try ctx.gemm(a, b, into: out)
        var logicalA: [Double] = []
        for z in 0..<batch { for i in 0..<M { for k in 0..<K { logicalA.append(stored[(z * M + i) * row + k]) } } }
        let want = Reference.gemm(logicalA, bv, batch: batch, M: M, N: N, K: K, batchA: true, batchB: true)
        #expect(relativeError(try ctx.read(out), want) <= fp32Tolerance, "K \(K)")
        try expectGuardIntact(ctx, out)
        expectNoValidationMessages(ctx)
    }

    /// Rank-4 operands (B, H, M, K) taken as strided views of packed (B, L, 3, H, dh) projections,
    /// as attention uses them.
    @Test(arguments: [(KernelVariants.GEMMKind.cpu, false), (.cpu, true), (.tiled, false)])
    func twoBatchAxesOnPackedViews(kind: KernelVariants.GEMMKind, swap: Bool) throws {
        let ctx = try makeContext { $0.gemm = kind; $0.cpuGEMMSwapRule = swap }
        let (B, L, H, dh) = (2, 5, 3, 4)
        let qkv = randomValues(B * L * 3 * H * dh, seed: 11)
        let t = try ctx.tensor(qkv.map { Float($0) }, [B, L, 3, H, dh])
        let q = try t.slice(axis: 2, 0..<1).squeezed(2).permuted([0, 2, 1, 3])   // (B, H, L, dh)
        let k = try t.slice(axis: 2, 1..<2).squeezed(2).permuted([0, 2, 1, 3])
        let s = try poisoned(ctx, [B, H, L, L])
        try ctx.gemm(q, k, into: s, transB: true, alpha: 0.5)
        var want: [Double] = []
        for b in 0..<B { for h in 0..<H { for i in 0..<L { for j in 0..<L {
            var acc = 0.0
            for d in 0..<dh { acc += qkv[(((b * L + i) * 3 + 0) * H + h) * dh + d] * qkv[(((b * L + j) * 3 + 1) * H + h) * dh + d] }
            want.append(0.5 * acc)
        } } } }
        #expect(relativeError(try ctx.read(s), want) <= fp32Tolerance)
        try expectGuardIntact(ctx, s)
        expectNoValidationMessages(ctx)
    }

    @Test func badShapesAndDtypesNameTheOp() throws {
        let ctx = try makeContext()
        let a = try ctx.empty([4, 5]), b = try ctx.empty([6, 3]), c = try ctx.empty([4, 3])
        do { try ctx.gemm(a, b, into: c); Issue.record("expected error") } catch {
            #expect("\(error)".contains("gemm") && "\(error)".contains("[4, 5]") && "\(error)".contains("[6, 3]"))
        }
        let other = try makeContext()
        do { try ctx.gemm(a, try other.empty([5, 3]), into: c); Issue.record("expected error") } catch {
            #expect("\(error)".contains("gemm") && "\(error)".contains("device mismatch"))
        }
        // A bias or scale from another device, too (also where the operands would be packed).
        let good = try ctx.empty([5, 3])
        for (bias, scale) in [(try other.empty([3]), nil), (nil, try other.empty([3]))] as [(Tensor?, Tensor?)] {
            do { try ctx.gemm(a, good, into: c, bias: bias, scale: scale); Issue.record("expected error") } catch {
                #expect("\(error)".contains("gemm") && "\(error)".contains("device mismatch"))
            }
        }
        let h = try ctx.empty([5, 3], dtype: .f16)
        do { try ctx.gemm(a, h, into: c); Issue.record("expected error") } catch {
            #expect("\(error)".contains("gemm") && "\(error)".contains("f16"))
        }
        expectNoValidationMessages(ctx)
    }
}
