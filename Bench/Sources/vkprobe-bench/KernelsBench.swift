import ArgumentParser
import Foundation
import ProbeKernels
import ProbeShaders
import VulkanCompute

struct KernelsBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "kernels", abstract: "Per-op throughput at ViT-B and probing shapes.")

    @Flag(help: "Shapes that finish in under two minutes on lavapipe (still one GEMM with N = K = 768).") var quick = false
    @Option(help: "Write the records as JSON to this file.") var json: String?
    @Option(help: "Device index or name substring.") var device: String?
    @Option(help: "Only ops whose name contains this.") var only: String?
    @Option(help: "CPU GEMM tile as lanes,rows,cols (tuning).") var cpuTile: String?
    @Option(help: "Timed repeats per case.") var repeats = 5
    @Option(help: "Threads per row of row kernels (softmax, norms, loss) (tuning).") var rowLocal: UInt32?
    @Option(help: "Workgroup size of elementwise kernels (tuning).") var elementwiseLocal: UInt32?
    @Option(help: "Only this exact shape, e.g. 50176,768,768 (M,N,K: a Linear's three GEMMs), B,M,N,K (a batched GEMM), or B,H,L,D with --only attention.") var shape: String?
    @Flag(help: "Skip the side-by-side run of the same shapes through PyTorch (Bench/compare_torch.py).") var noCompare = false

    func run() throws {
        let dev = try ComputeDevice(options: DeviceOptions(selector: device).applying(environment: benchEnvironment), shaders: BundledShaders.shared)
        var variants = KernelVariants(for: dev.capabilities, tuning: benchTuning)
        if let cpuTile {
            let v = cpuTile.split(separator: ",").compactMap { UInt32($0) }
            if v.count == 3 { variants.cpuGEMM = (v[0], v[1], v[2]) }
        }
        if let rowLocal { variants.rowLocal = rowLocal }
        if let elementwiseLocal { variants.elementwiseLocal = elementwiseLocal }
        let ctx = try KernelContext(device: dev, variants: variants)
        print("device: \(dev.name)  (GEMM variant \(variants.gemm.rawValue))")
        print(ctx.coopmat)
        var records: [BenchRecord] = []
        let wanted = shape.map { $0.split(separator: ",").compactMap { Int($0) } }
        var cases = KernelCases.all(quick: quick).filter { only == nil || $0.op.contains(only!) }
        if let wanted {
            cases = cases.filter { $0.shape == wanted }
            if cases.isEmpty, wanted.count == 3 {
                let (M, N, K) = (wanted[0], wanted[1], wanted[2])
                cases = [KernelCases.linear(M, N, K), KernelCases.linearInputGrad(M, N, K), KernelCases.linearWeightGrad(M, N, K)]
                    .filter { only == nil || $0.op.contains(only!) }
            }
            if cases.isEmpty, wanted.count == 4 {
                let (a, b, c, d) = (wanted[0], wanted[1], wanted[2], wanted[3])
                cases = [only == "attention" ? KernelCases.attention(a, b, c, d) : KernelCases.batched(a, b, c, d)]
            }
        }
        for c in cases {
            let coopmatBefore = ctx.coopmat
            let run = try c.prepare(ctx)
            let ms = try measure(ctx, repeats: repeats, run)
            // f16-input GEMMs go to the cooperative-matrix kernel where it is on; its first use
            // checks it against the tiled kernel, so ask after the run.
            let variant = !c.op.hasPrefix("gemm") ? "-" : c.dtype == "f16" && ctx.coopmat.enabled ? "coopmat" : variants.gemm.rawValue
            if ctx.coopmat != coopmatBefore { print("after the first f16 GEMM: \(ctx.coopmat)") }
            records.append(BenchRecord(op: c.op, shape: c.shape, dtype: c.dtype, variant: variant, median_ms: ms,
                                       gflops: c.flops / (ms * 1e6), gbps: c.bytes / (ms * 1e6), device: dev.name))
            FileHandle.standardError.write(Data(String(format: "  %@ %@: %.3f ms\n", c.op, "\(c.shape)", ms).utf8))
        }
        printTable(records)
        let path = json ?? FileManager.default.temporaryDirectory.appendingPathComponent("vkprobe-bench-\(getpid()).json").path
        try writeJSON(records, to: path)
        defer { if json == nil { removeScratchRecords(path) } }
        if json != nil { print("wrote \(path)") }
        if !noCompare { comparePeer(results: path, gpu: !dev.capabilities.isCPU) }
    }
}

/// A benchmark case: allocates its operands once and returns the closure that records the op.
struct KernelCase {
    var op: String
    var shape: [Int]
    var dtype: String
    var flops: Double
    var bytes: Double
    var prepare: (KernelContext) throws -> () throws -> Void
}

enum KernelCases {
    static func random(_ ctx: KernelContext, _ shape: [Int], f16: Bool = false) throws -> Tensor {
        let n = shape.reduce(1, *)
        var s: UInt32 = 12345
        let v = (0..<n).map { _ -> Float in s = s &* 1664525 &+ 1013904223; return Float(s >> 8) / Float(1 << 24) - 0.5 }
        return f16 ? try ctx.tensorF16(v, shape) : try ctx.tensor(v, shape)
    }

    /// Linear layer y = x Wᵀ + b: tokens (M, K) times weights (N, K).
    static func linear(_ M: Int, _ N: Int, _ K: Int, f16: Bool = false) -> KernelCase {
        let es = f16 ? 2.0 : 4.0
        return KernelCase(op: "gemm", shape: [M, N, K], dtype: f16 ? "f16" : "f32", flops: 2.0 * Double(M * N * K),
                          bytes: es * Double(M * K + N * K + M * N)) { ctx in
            let x = try random(ctx, [M, K], f16: f16), w = try random(ctx, [N, K], f16: f16)
            let y = try ctx.empty([M, N], dtype: f16 ? .f16 : .f32)
            return { try ctx.gemm(x, w, into: y, transB: true) }
        }
    }

    /// A Linear's input gradient dX = dY·W: dY (M, K) times weights (K, N), both row-major.
    static func linearInputGrad(_ M: Int, _ N: Int, _ K: Int) -> KernelCase {
        KernelCase(op: "gemm_nn", shape: [M, N, K], dtype: "f32", flops: 2.0 * Double(M * N * K), bytes: 4.0 * Double(M * K + K * N + M * N)) { ctx in
            let dy = try random(ctx, [M, K]), w = try random(ctx, [K, N]), dx = try ctx.empty([M, N])
            return { try ctx.gemm(dy, w, into: dx) }
        }
    }

    /// A Linear's weight gradient dW = dYᵀ·X: dY (K, M) transposed times inputs (K, N).
    static func linearWeightGrad(_ M: Int, _ N: Int, _ K: Int) -> KernelCase {
        KernelCase(op: "gemm_tn", shape: [M, N, K], dtype: "f32", flops: 2.0 * Double(M * N * K), bytes: 4.0 * Double(M * K + K * N + M * N)) { ctx in
            let dy = try random(ctx, [K, M]), x = try random(ctx, [K, N]), dw = try ctx.empty([M, N])
            return { try ctx.gemm(dy, x, into: dw, transA: true) }
        }
    }

    /// EP's aggregation P = A X: attention (B, Q, N) times tokens (B, N, D), batched.
    static func batched(_ B: Int, _ M: Int, _ N: Int, _ K: Int) -> KernelCase {
        KernelCase(op: "gemm_batched", shape: [B, M, N, K], dtype: "f32", flops: 2.0 * Double(B * M * N * K),
                   bytes: 4.0 * Double(B * (M * K + K * N + M * N))) { ctx in
            let a = try random(ctx, [B, M, K]), b = try random(ctx, [B, K, N]), c = try ctx.empty([B, M, N])
            return { try ctx.gemm(a, b, into: c) }
        }
    }

    /// A contiguous (rows, cols) copy of a (cols, rows) matrix's transpose (what the CPU GEMM
    /// packs its operands with).
    static func transpose(_ rows: Int, _ cols: Int) -> KernelCase {
        KernelCase(op: "transpose", shape: [rows, cols], dtype: "f32", flops: 0, bytes: 8.0 * Double(rows * cols)) { ctx in
            let x = try random(ctx, [cols, rows]), y = try ctx.empty([rows, cols])
            return { try ctx.copy(x.permuted([1, 0]), into: y) }
        }
    }

    /// A contiguous (B, N, D) copy of a (B, 1, D) tensor (`along` 1) or of a (B, N, 1) one (`along`
    /// 2), broadcast: the backward of a mean over tokens or over channels.
    static func broadcast(_ B: Int, _ N: Int, _ D: Int, along: Int) -> KernelCase {
        KernelCase(op: along == 1 ? "broadcast_tokens" : "broadcast_channels", shape: [B, N, D], dtype: "f32", flops: 0,
                   bytes: 4.0 * Double(B * N * D)) { ctx in
            let x = try random(ctx, along == 1 ? [B, 1, D] : [B, N, 1]), y = try ctx.empty([B, N, D])
            let view = Tensor(buffer: x.buffer, shape: [B, N, D], strides: along == 1 ? [D, 0, 1] : [N, 1, 0])
            return { try ctx.copy(view, into: y) }
        }
    }

    /// z = x + y over (B, N, D): dense operands (a residual add, gradients accumulated), or
    /// (`bias`) y of shape (D) broadcast over the tokens.
    static func add(_ B: Int, _ N: Int, _ D: Int, bias: Bool = false) -> KernelCase {
        KernelCase(op: bias ? "add_bias" : "add", shape: [B, N, D], dtype: "f32", flops: Double(B * N * D),
                   bytes: 4.0 * Double((bias ? 2 : 3) * B * N * D)) { ctx in
            let x = try random(ctx, [B, N, D]), y = try random(ctx, bias ? [D] : [B, N, D]), z = try ctx.empty([B, N, D])
            return { _ = try ctx.binary(x, y, .add, into: z) }
        }
    }

    /// The mean over the tokens of (B, N, D) (global average pooling, lp_gap's features).
    static func meanTokens(_ B: Int, _ N: Int, _ D: Int) -> KernelCase {
        KernelCase(op: "mean_tokens", shape: [B, N, D], dtype: "f32", flops: Double(B * N * D), bytes: 4.0 * Double(B * N * D + B * D)) { ctx in
            let x = try random(ctx, [B, N, D]), y = try ctx.empty([B, D])
            return { _ = try ctx.reduce(x, axis: 1, .mean, into: y) }
        }
    }

    static func softmax(_ rows: Int, _ cols: Int) -> KernelCase {
        KernelCase(op: "softmax", shape: [rows, cols], dtype: "f32", flops: 5.0 * Double(rows * cols), bytes: 8.0 * Double(rows * cols)) { ctx in
            let x = try random(ctx, [rows, cols]), y = try ctx.empty([rows, cols])
            return { _ = try ctx.softmax(x, into: y) }
        }
    }

    static func layerNorm(_ rows: Int, _ cols: Int) -> KernelCase {
        KernelCase(op: "layernorm", shape: [rows, cols], dtype: "f32", flops: 8.0 * Double(rows * cols), bytes: 8.0 * Double(rows * cols)) { ctx in
            let x = try random(ctx, [rows, cols]), g = try random(ctx, [cols]), b = try random(ctx, [cols]), y = try ctx.empty([rows, cols])
            return { _ = try ctx.layerNorm(x, gamma: g, beta: b, eps: 1e-6, into: y) }
        }
    }

    static func gelu(_ n: Int) -> KernelCase {
        KernelCase(op: "gelu", shape: [n], dtype: "f32", flops: 20.0 * Double(n), bytes: 8.0 * Double(n)) { ctx in
            let x = try random(ctx, [n]), y = try ctx.empty([n])
            return { _ = try ctx.unary(x, .gelu, into: y) }
        }
    }

    /// Fused attention over (B, H, L, D).
    static func attention(_ B: Int, _ H: Int, _ L: Int, _ D: Int) -> KernelCase {
        KernelCase(op: "attention", shape: [B, H, L, D], dtype: "f32", flops: 4.0 * Double(B * H * L * L * D),
                   bytes: 16.0 * Double(B * H * L * D)) { ctx in
            let q = try random(ctx, [B, H, L, D]), k = try random(ctx, [B, H, L, D]), v = try random(ctx, [B, H, L, D])
            let o = try ctx.empty([B, H, L, D])
            return { try ctx.attention(q: q, k: k, v: v, scale: 1 / Float(D).squareRoot(), into: o) }
        }
    }

    static func crossEntropy(_ rows: Int, _ C: Int) -> KernelCase {
        KernelCase(op: "cross_entropy", shape: [rows, C], dtype: "f32", flops: 6.0 * Double(rows * C), bytes: 8.0 * Double(rows * C)) { ctx in
            let x = try random(ctx, [rows, C]), labels = try ctx.tensor((0..<rows).map { Int32($0 % C) }, [rows])
            return { _ = try ctx.crossEntropy(x, labels: labels, gradScale: 1 / Float(rows)) }
        }
    }

    static func lars(_ n: Int) -> KernelCase {
        KernelCase(op: "lars", shape: [n], dtype: "f32", flops: 10.0 * Double(n), bytes: 20.0 * Double(n)) { ctx in
            let p = try random(ctx, [n]), g = try random(ctx, [n]), m = try random(ctx, [n])
            return { try ctx.optimizerStep(.lars(lr: 0.1, momentum: 0.9, weightDecay: 0, trust: 0.001, excluded: false), param: p, grad: g, state1: m) }
        }
    }

    static func all(quick: Bool) -> [KernelCase] {
        if quick {
            // lavapipe: ViT-B widths with few tokens, and the probing shapes at a small batch.
            return [linear(1024, 768, 768), linear(197 * 2, 2304, 768), linear(197 * 2, 768, 3072),
                    linear(64, 1000, 768), linearInputGrad(196, 768, 768), linearWeightGrad(768, 768, 196), batched(8, 32, 768, 196),
                    transpose(196, 768), transpose(768, 768),
                    broadcast(4, 49, 768, along: 1), broadcast(4, 49, 768, along: 2), add(4, 49, 768), add(4, 49, 768, bias: true),
                    meanTokens(4, 49, 768), meanTokens(64, 196, 768), softmax(2 * 12 * 197, 197), layerNorm(197 * 2, 768), gelu(197 * 2 * 3072),
                    attention(1, 12, 197, 64), crossEntropy(64, 1000), lars(768 * 768)]
        }
        let B = 64, tokens = 197 * B
        return [linear(tokens, 2304, 768), linear(tokens, 768, 768), linear(tokens, 3072, 768), linear(tokens, 768, 3072),
                linear(50176, 768, 768), linear(tokens, 2304, 768, f16: true), linear(tokens, 3072, 768, f16: true),
                linear(50176, 768, 64), linear(256, 1000, 768), linearInputGrad(tokens, 768, 768), linearWeightGrad(768, 768, tokens),
                batched(256, 32, 768, 196), transpose(tokens, 768), add(B, 197, 768), add(B, 197, 768, bias: true), meanTokens(256, 196, 768),
                softmax(B * 12 * 197, 197), layerNorm(tokens, 768), gelu(tokens * 3072),
                attention(B, 12, 197, 64), crossEntropy(256, 1000), lars(768 * 768)]
    }
}
