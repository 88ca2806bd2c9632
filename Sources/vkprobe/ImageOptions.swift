import ArgumentParser
import Foundation
import ProbeBackbones
import ProbeData
import ProbeKernels
import SafeTensors
import VulkanCompute

/// The frozen backbone: a registry name (or timm constructor arguments) and a checkpoint.
struct BackboneOptions: ParsableArguments {
    @Option(help: "timm model name (e.g. vit_base_patch16_224.mae, vit_small_patch14_reg4_dinov2.lvd142m, vit_base_patch16_clip_224.openai), or a JSON file of timm constructor arguments.")
    var model: String?
    @Option(help: "The checkpoint: timm's model.safetensors (timm names; F32, F16 or BF16).") var weights: String?
    @Option(help: "Storage of weights and activations: fp16 (default where the device has 16-bit storage) or fp32. fp32 also writes f32 tokens.")
    var precision: String?

    var given: Bool { model != nil || weights != nil }

    func config() throws -> ViTConfig {
        guard let model else { throw BackboneError("--model is needed with --weights") }
        return try ViTRegistry.resolve(model)
    }

    func load(_ ctx: KernelContext) throws -> VisionTransformer {
        guard let model, let weights else { throw BackboneError("a backbone needs both --model and --weights") }
        let chosen: Precision
        if let precision {
            guard let p = Precision(rawValue: precision) else { throw BackboneError("--precision \(precision): fp32 or fp16") }
            chosen = p
        } else {
            chosen = ctx.device.capabilities.storageBuffer16BitAccess ? .fp16 : .fp32
        }
        let vitWeights = try ViTWeights(config: try config(), file: try SafeTensorsFile(path: weights), model: model)
        return try VisionTransformer(weights: vitWeights, ctx: ctx, precision: chosen)
    }
}

/// An image dataset on disk and how its images are loaded.
struct ImageDataOptions: ParsableArguments {
    @Option(help: "Dataset root directory (layouts: see --dataset and the README).") var data: String?
    @Option(help: "Layout of --data: imagefolder (DIR/train/<class>/*.jpg and DIR/val/<class>/*.jpg), imagenet1k (the same), CIFAR10, CIFAR100 (binary versions), CUB200, OxfordIIITPet, Food101, DTD, FGVCAircraft, SUN397, Places365.")
    var dataset = "imagefolder"
    @Option(help: "Input size S: eval resizes the shorter side to int(S·256/224) and center-crops S; training crops RandomResizedCrop(S). Default: the model's.")
    var imageSize: Int?
    @Option(help: "Decoding threads (default: every core).") var workers = ProcessInfo.processInfo.activeProcessorCount
    @Flag(help: "Decode every image first and fail, listing them, if any cannot be read (default: skip them, reported by name).")
    var strict = false
    @Option(help: "Unreadable images a split may have before the run stops, naming them: a share (1%, 0.5%) or a count (0 = none). They are left out, counted in the summary line, summary.json and extract.json.")
    var maxUnreadable = "1%"

    func unreadablePolicy() throws -> UnreadablePolicy { try UnreadablePolicy(parsing: maxUnreadable) }

    func size(_ config: ViTConfig) throws -> Int {
        let s = imageSize ?? config.imgSize
        guard s >= config.patchSize, s <= 4096 else { throw DataError("--image-size \(s): expected \(config.patchSize) to 4096 px") }
        return s
    }

    /// One split (`nil`: --data itself as one ImageFolder) through `transform`.
    func source(split train: Bool?, transform: ImageTransform, normalization: Normalization, views: Int = 1) throws -> DatasetImages {
        guard let data else { throw DataError("--data DIR is needed") }
        let dataset = try ImageDatasets.open(dataset, root: URL(fileURLWithPath: data), train: train)
        for note in (dataset as? FileListDataset)?.notes ?? [] { print("note: \(note)") }
        let images = try DatasetImages(dataset: dataset, transform: transform, normalization: normalization, views: views, workers: workers)
        if strict {
            let bad = images.unreadable()
            if !bad.isEmpty {
                let listed = bad.prefix(20).map { "  \($0.name): \($0.reason)" }.joined(separator: "\n")
                throw DataError("--strict: \(bad.count) of \(dataset.count) images in \(dataset.description) cannot be read:\n\(listed)"
                                + (bad.count > 20 ? "\n  … and \(bad.count - 20) more" : "")
                                + "\nremove or replace them, or run without --strict to skip them")
            }
        }
        return images
    }
}

extension Normalization {
    init(_ config: ViTConfig) { self.init(mean: config.mean, std: config.std) }
}
