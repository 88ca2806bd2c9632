import ArgumentParser
import Foundation
import Logging
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

    @OptionGroup var backbone: BackboneOptions
    @Option(help: "Preprocessed images: a safetensors file with images (S, 3, H, W) f32 normalised and labels (S,) (instead of --data).")
    var images: String?
    @OptionGroup var data: ImageDataOptions
    @Option(help: "With --data: the split to extract, train or val; `none` reads --data itself as one ImageFolder.") var split = "val"
    @Flag(help: "With --data: upstream's training augmentation (RandomResizedCrop + flip) instead of the eval transform.") var augment = false
    @Option(help: "With --augment: augmented views per image (view-major in the token set; `vkprobe train` uses view e mod K in epoch e).") var views = 1
    @Option(help: "Seed of the augmentation.") var seed: UInt64 = 0
    @Option(help: "Output directory: OUTPUT/<tap>/shard-NNNNN.safetensors per token set, OUTPUT/extract.json.") var output: String
    @Option(parsing: .unconditional, help: "Token sets, comma-separated: block indices (-1 the last, -4, 11) or `norm` (after the final norm). Default: what upstream probes for the family: the last block before the final norm for MAE-style ViTs, `norm` for DINOv2, CLIP and SigLIP.")
    var blocks: String?
    @Option(help: "Images per forward pass (train's --extract-batch-size).") var batchSize = 64
    @Option(help: "Images per shard file.") var shardSize = 4096
    @Option(help: "Profile this many batches (GPU timestamps around every dispatch): a per-op table, and OUTPUT/profile.json.") var profile = 0
    @OptionGroup var flags: DeviceFlags
    @OptionGroup var logging: LoggingOptions

    func run() throws {
        try reportingErrors {
            try Destination.folder(output)
            let config = try backbone.config()
            // Started by mpirun: each process extracts every N-th shard (see TokenExtraction).
            let group: ProcessGroup = MPIGroup.launchedByMPI ? try MPIGroup() : SingleProcess()
            // MPI_Finalize only after success: a rank that fails exits without it, and mpirun
            // then stops the others instead of leaving them waiting in a collective.
            var succeeded = false
            defer { if succeeded { (group as? MPIGroup)?.finish() } }
            guard batchSize > 0, shardSize > 0 else { throw DataError("--batch-size \(batchSize), --shard-size \(shardSize): both at least 1") }
            let device = try ComputeDevice(options: try flags.options(for: group), shaders: BundledShaders.shared)
            let ctx = try KernelContext.commandLine(device)
            let weightsPath = try backbone.weightsPath()
            let vit = try backbone.load(ctx, weights: weightsPath)
            var proto = try data.probingProtocol(config)
            if let blocks { proto.tap = blocks }
            proto.setCLS(pooledHead: vit.pooledHead?.rawValue, classToken: config.classToken)
            if vit.projectTokens { proto.tokensProjected = true }
            let taps = try proto.tap.split(separator: ",").map { try TokenTap.parse(String($0).trimmingCharacters(in: .whitespaces), depth: config.depth) }
            let source: ImageSource
            switch (images, data.data) {
            case let (file?, nil): source = try SafeTensorsImages(path: file)
            case (nil, _?):
                guard ["train", "val", "none"].contains(split) else { throw DataError("--split \(split): train, val or none") }
                guard views == 1 || augment else { throw DataError("--views \(views) needs --augment (eval views are identical)") }
                let t = proto.transforms.transforms(size: proto.inputSize)
                source = try data.source(split: split == "none" ? nil : split == "train",
                                         transform: augment ? .train(t.train, seed: seed) : .eval(t.eval),
                                         normalization: Normalization(proto), views: views)
                say(proto.line)
                say(split == "none" ? "extracting \(data.data!) as one image folder (--split none)"
                      : "extracting the \(split) split of \(data.data!) (--split \(split == "val" ? "train" : "val") for the other)")
            default: throw DataError("give either --images FILE (preprocessed) or --data DIR (an image dataset)")
            }
            say("\(backbone.model!): \(config.depth) blocks, width \(config.embedDim), patch \(config.patchSize), \(vit.precision.rawValue), on \(device.name); "
                  + "\(source.count) images of \(source.height)×\(source.width) → \(taps.map(\.description).joined(separator: ", "))")
            let job = try TokenExtraction(vit: vit, model: backbone.model!, weightsPath: weightsPath, images: source, taps: taps,
                                          output: URL(fileURLWithPath: output), batchSize: batchSize, shardSize: shardSize,
                                          outputF16: vit.precision == .fp16, views: views, protocol: data.data != nil ? proto : nil)
            job.profileBatches = profile
            if data.data != nil {
                job.unreadablePolicy = try data.unreadablePolicy()
                job.split = split == "none" ? "\(data.data!)" : "\(split) split"
            }
            job.rank = group.rank; job.ranks = group.size
            job.logger = ConsoleLog.logger("vkprobe.training", rank: group.rank, ranks: group.size)
            if group.size == 1, ConsoleLog.stdoutIsTerminal {
                job.progress = { ConsoleLog.write("\r\u{1B}[K\($0)", toStandardError: false) }
            }
            try job.run()
            succeeded = true
            if let u = job.unreadable, data.data != nil { print("images: \(u.line)\(u.unreadable > 0 ? " (named above; left out of the token set)" : "") — in \(output)/extract.json") }
            say("peak device memory \(formatBytes(device.memory.peakUsedBytes)) (weights \(formatBytes(vit.weightBytes)))")
        }
    }
}
