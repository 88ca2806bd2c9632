import ArgumentParser
import Foundation
import ProbeHeads
import ProbeKernels
import ProbeShaders
import ProbeTraining
import VulkanCompute

struct HeadsBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "heads",
        abstract: "Training throughput of every head (pooling → BN → Linear, cross-entropy, backward) at ViT-B shapes.")

    @Flag(help: "Smaller shapes for lavapipe (D 768, N 49, batch 4).") var quick = false
    @Option(help: "Write the records as JSON to this file.") var json: String?
    @Option(help: "Device index or name substring.") var device: String?
    @Option(help: "Only these heads (comma-separated).") var only: String?
    @Option(help: "Timed repeats per head.") var repeats = 3
    @Option(help: "Directory of an upstream efficient-probing checkout for the PyTorch side (else $EP_UPSTREAM).") var upstream: String?
    @Flag(help: "Skip the side-by-side PyTorch run.") var noCompare = false

    func run() throws {
        let dev = try ComputeDevice(options: DeviceOptions(selector: device), shaders: BundledShaders.shared)
        let ctx = try KernelContext(device: dev)
        let (D, N, B, C) = quick ? (768, 49, 4, 1000) : (768, 196, 256, 1000)
        print("device: \(dev.name); heads at D = \(D), N = \(N), batch \(B), C = \(C)")
        var records: [BenchRecord] = []
        let names = only.map { $0.split(separator: ",").map(String.init) } ?? Heads.names
        for name in names {
            let pooling: Pooling
            do { pooling = try Heads.pooling(name, HeadOptions(dim: D, tokens: try HeadName(name).tokens(patches: N), queries: 32, heads: 16, classes: C)) } catch {
                print("  \(name): \(error)"); continue
            }
            let layout = ProbeHeadLayout(pooling: pooling, classes: C)
            let imagesPerSecond = try measureTrainingStep(layout, ctx: ctx, batch: B, repeats: repeats)
            let ms = Double(B) / imagesPerSecond * 1e3
            let flops = 2.0 * 3.0 * Double(layout.forwardMACs) * Double(B)
            records.append(BenchRecord(op: "head:\(name)", shape: [B, N, D, C], dtype: "f32", variant: "fwd+bwd", median_ms: ms,
                                       gflops: flops / (ms * 1e6), gbps: Double(B * N * D * 4) / (ms * 1e6), device: dev.name))
            FileHandle.standardError.write(Data(String(format: "  %@: %.1f images/s\n", name, imagesPerSecond).utf8))
        }
        printTable(records)
        let path = json ?? FileManager.default.temporaryDirectory.appendingPathComponent("vkprobe-heads-\(getpid()).json").path
        try writeJSON(records, to: path)
        if json != nil { print("wrote \(path)") }
        if !noCompare { comparePeer(results: path, gpu: !dev.capabilities.isCPU, extra: upstream.map { ["--upstream", $0] } ?? []) }
    }
}
