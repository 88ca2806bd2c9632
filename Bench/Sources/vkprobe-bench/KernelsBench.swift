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

    func run() throws {
        let dev = try ComputeDevice(options: DeviceOptions(selector: device), shaders: BundledShaders.shared)
        var variants = KernelVariants(for: dev.capabilities)
        if let cpuTile {
            let v = cpuTile.split(separator: ",").compactMap { UInt32($0) }
            if v.count == 3 { variants.cpuGEMM = (v[0], v[1], v[2]) }
        }
        let ctx = try KernelContext(device: dev, variants: variants)
        print("device: \(dev.name)  (GEMM variant \(variants.gemm.rawValue))")
        var records: [BenchRecord] = []
        let cases = KernelCases.all(quick: quick).filter { only == nil || $0.op.contains(only!) }
        for c in cases {
            let run = try c.prepare(ctx)
            let ms = try measure(ctx, repeats: repeats, run)
            let variant = c.op.hasPrefix("gemm") ? variants.gemm.rawValue : "-"
            records.append(BenchRecord(op: c.op, shape: c.shape, dtype: c.dtype, variant: variant, median_ms: ms,
                                       gflops: c.flops / (ms * 1e6), gbps: c.bytes / (ms * 1e6), device: dev.name))
            FileHandle.standardError.write(Data(String(format: "  %@ %@: %.3f ms\n", c.op, "\(c.shape)", ms).utf8))
        }
        printTable(records)
        if let json { try writeJSON(records, to: json); print("wrote \(json)") }
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

    static func all(quick: Bool) -> [KernelCase] {
        if quick {
            return [linear(1024, 768, 768), linear(197 * 2, 2304, 768), linear(197 * 2, 768, 3072)]
        }
        let tokens = 197 * 64
        return [linear(tokens, 2304, 768), linear(tokens, 768, 768), linear(tokens, 3072, 768), linear(tokens, 768, 3072),
                linear(50176, 768, 768), linear(tokens, 2304, 768, f16: true), linear(tokens, 3072, 768, f16: true)]
    }
}
