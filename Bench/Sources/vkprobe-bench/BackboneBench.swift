import ArgumentParser
import Foundation
import ProbeBackbones
import ProbeKernels
import ProbeShaders
import VulkanCompute

struct BackboneBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "backbone",
        abstract: "Images/s of the frozen ViT forward (ViT-S/16, ViT-B/16, random weights, 224 px), side by side with timm in PyTorch.")

    @Flag(help: "Small: batch 1 and 4 only, two repeats.") var quick = false
    @Option(help: "Batch sizes (comma-separated).") var batchSizes = "1,8,32,64"
    @Option(help: "Models (timm names).") var models = "vit_small_patch16_224,vit_base_patch16_224"
    @Option(help: "fp32 or fp16 (default: fp16 where the device has 16-bit storage).") var precision: String?
    @Option(help: "Image size.") var imageSize = 224
    @Option(help: "Timed repeats.") var repeats = 3
    @Option(help: "Write the records as JSON to this file.") var json: String?
    @Option(help: "Device index or name substring.") var device: String?
    @Flag(help: "Skip the side-by-side PyTorch run.") var noCompare = false
    @Flag(help: "Also print each forward's per-op profile (GPU timestamps around every dispatch), once per model and batch size.") var profile = false
    @Option(help: "With --profile: write the profiles as JSON to this file.") var profileJSON: String?

    func run() throws {
        let dev = try ComputeDevice(options: DeviceOptions(selector: device), shaders: BundledShaders.shared)
        let ctx = try KernelContext(device: dev)
        let p = try precision.map { guard let v = Precision(rawValue: $0) else { throw BackboneError("--precision fp32|fp16") }; return v }
            ?? (dev.capabilities.storageBuffer16BitAccess ? .fp16 : .fp32)
        let batches = quick ? [1, 4] : batchSizes.split(separator: ",").compactMap { Int($0) }
        print("device: \(dev.name); \(p.rawValue); images \(imageSize) px")
        var records: [BenchRecord] = []
        var profiles: [String: ProfileReport] = [:]
        for name in models.split(separator: ",").map(String.init) {
            var config = try ViTRegistry.config(name)
            config.imgSize = imageSize
            let vit = try VisionTransformer(weights: ViTWeights.random(config), ctx: ctx, precision: p)
            let tokens = (imageSize / config.patchSize) * (imageSize / config.patchSize) + config.prefixTokens
            // Multiply-adds per image: patch embedding, qkv, attention, proj, MLP.
            let D = config.embedDim, T = tokens
            let macs = (T - config.prefixTokens) * 3 * config.patchSize * config.patchSize * D
                + config.depth * (T * D * 3 * D + 2 * T * T * D + T * D * D + 2 * T * D * config.mlpHidden)
            for b in batches {
                let x = try ctx.tensor([Float](repeating: 0.1, count: b * 3 * imageSize * imageSize), [b, 3, imageSize, imageSize])
                dev.memory.resetPeak()
                let ms = try measure(ctx, warmup: 1, repeats: quick ? 2 : repeats) { _ = try vit.forward(x, taps: [.block(config.depth - 1)]) }
                let peak = dev.memory.peakUsedBytes
                if profile {
                    let report = try ctx.profile { _ = try vit.forward(x, taps: [.block(config.depth - 1)]) }
                    profiles["\(name) batch \(b)"] = report
                    print("\n\(name): one forward at batch \(b), \(imageSize) px, \(p.rawValue)\n" + report.table(limit: 25) + "\n")
                }
                records.append(BenchRecord(op: "backbone:\(name)", shape: [b, 3, imageSize, imageSize], dtype: p == .fp16 ? "f16" : "f32",
                                           variant: "forward", median_ms: ms, gflops: 2 * Double(macs * b) / (ms * 1e6),
                                           gbps: nil, device: dev.name, images_per_s: Double(b) / (ms / 1e3), peak_memory_bytes: peak))
                print(String(format: "  %@ batch %d: %.1f images/s (%.1f ms), peak device memory %@ (weights %@)", name, b,
                             Double(b) / (ms / 1e3), ms, formatBytes(peak), formatBytes(vit.weightBytes)))
            }
        }
        printTable(records)
        if let profileJSON {
            try writeJSON(profiles, to: profileJSON)
            print("wrote \(profileJSON)")
        }
        let path = json ?? FileManager.default.temporaryDirectory.appendingPathComponent("vkprobe-backbone-\(getpid()).json").path
        try writeJSON(records, to: path)
        defer { if json == nil { removeScratchRecords(path) } }
        if json != nil { print("wrote \(path)") }
        if !noCompare { comparePeer(results: path, gpu: !dev.capabilities.isCPU) }
    }
}
