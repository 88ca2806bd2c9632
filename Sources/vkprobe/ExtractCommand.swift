import ArgumentParser
import Foundation
import ProbeBackbones
import ProbeData
import ProbeKernels
import ProbeShaders
import ProbeTraining
import SafeTensors
import VulkanCompute

struct ExtractCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "extract",
        abstract: "Run a frozen ViT (timm checkpoint) over images and write the token files `vkprobe train` reads.")

    @Option(help: "timm model name (e.g. vit_base_patch16_224.mae, vit_small_patch14_reg4_dinov2.lvd142m, vit_base_patch16_clip_224.openai), or a JSON file of timm constructor arguments.")
    var model: String
    @Option(help: "The checkpoint: timm's model.safetensors (timm names; F32, F16 or BF16).") var weights: String
    @Option(help: "Images: a safetensors file with images (S, 3, H, W) f32 normalised and labels (S,).") var images: String
    @Option(help: "Output directory: OUTPUT/<tap>/shard-NNNNN.safetensors per token set, OUTPUT/extract.json.") var output: String
    @Option(parsing: .unconditional, help: "Token sets, comma-separated: block indices (-1 the last, -4, 11) or `norm` (after the final norm). Default: the last block without the final norm, what upstream probes.")
    var blocks = "-1"
    @Option(help: "Storage of weights and activations: fp16 (default where the device has 16-bit storage) or fp32. fp32 also writes f32 tokens.")
    var precision: String?
    @Option(help: "Images per forward pass.") var batchSize = 32
    @Option(help: "Images per shard file.") var shardSize = 4096
    @OptionGroup var flags: DeviceFlags

    func run() throws {
        try reportingErrors {
            let config: ViTConfig
            if model.hasSuffix(".json") {
                config = try ViTConfig.fromTimmArguments(try String(contentsOfFile: model, encoding: .utf8))
            } else {
                config = try ViTRegistry.config(model)
            }
            let device = try ComputeDevice(options: flags.options, shaders: BundledShaders.shared)
            let ctx = try KernelContext(device: device)
            let chosen: Precision
            if let precision {
                guard let p = Precision(rawValue: precision) else { throw BackboneError("--precision \(precision): fp32 or fp16") }
                chosen = p
            } else {
                chosen = device.capabilities.storageBuffer16BitAccess ? .fp16 : .fp32
            }
            let file = try SafeTensorsFile(path: weights)
            let vitWeights = try ViTWeights(config: config, file: file, model: model)
            let vit = try VisionTransformer(weights: vitWeights, ctx: ctx, precision: chosen)
            let taps = try blocks.split(separator: ",").map { try TokenTap.parse(String($0).trimmingCharacters(in: .whitespaces), depth: config.depth) }
            let source = try SafeTensorsImages(path: images)
            print("\(model): \(config.depth) blocks, width \(config.embedDim), patch \(config.patchSize), \(chosen.rawValue), on \(device.name); "
                  + "\(source.count) images of \(source.height)×\(source.width) → \(taps.map(\.description).joined(separator: ", "))")
            let job = try TokenExtraction(vit: vit, model: model, weightsPath: weights, images: source, taps: taps,
                                          output: URL(fileURLWithPath: output), batchSize: batchSize, shardSize: shardSize,
                                          outputF16: chosen == .fp16)
            if isatty(STDOUT_FILENO) != 0 {
                job.progress = { FileHandle.standardOutput.write(Data("\r\u{1B}[K\($0)".utf8)) }
                job.log = { FileHandle.standardOutput.write(Data("\r\u{1B}[K\($0)\n".utf8)) }
            } else {
                job.log = { print($0); fflush(stdout) }
            }
            try job.run()
            print("peak device memory \(formatBytes(device.memory.peakUsedBytes)) (weights \(formatBytes(vit.weightBytes)))")
        }
    }
}
