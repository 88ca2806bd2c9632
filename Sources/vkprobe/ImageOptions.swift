import ArgumentParser
import Foundation
import ProbeBackbones
import ProbeHub
import ProbeData
import ProbeKernels
import SafeTensors
import VulkanCompute

/// The frozen backbone: a registry name (or timm constructor arguments) and a checkpoint.
struct BackboneOptions: ParsableArguments {
    @Option(help: "timm model name (e.g. vit_base_patch16_224.mae, vit_small_patch14_reg4_dinov2.lvd142m, vit_base_patch16_clip_224.openai), or a JSON file of timm constructor arguments.")
    var model: String?
    @Option(help: "The checkpoint: timm's model.safetensors (timm names; F32, F16 or BF16). Without it, --model NAME.TAG is fetched from the Hugging Face hub (timm/NAME.TAG) into its shared cache ($HF_HOME; HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE honoured).") var weights: String?
    @Option(help: "Storage of weights and activations: fp16 (the default on GPUs with 16-bit storage) or fp32 (the default on CPU devices, where it is faster). fp32 also writes f32 tokens.")
    var precision: String?
    @Option(help: "The MLP activation the weights were trained with: gelu, quick_gelu, gelu_tanh. Default: the family's (CLIP: QuickGELU for timm's `_quickgelu_` names and `.openai` tags, as open_clip runs them, else GELU; SigLIP: exact GELU, as timm).")
    var activation: String?
    @Option(help: "Resizing the position embedding to another grid: antialias (timm's), bicubic (plain), hub-offset (the hub DINOv2's: no antialias, scale (grid + 0.1)/M). Default: the family's (see the README's protocol table).")
    var posEmbedResize: String?

    @Option(help: "What `cls` holds after the final norm: head (the checkpoint's pooled head where its family has one, as upstream's `cls` reads it — CLIP's projection `head.*`, SigLIP's attention pool `attn_pool.*`) or token (the [CLS] token itself).")
    var cls = "head"
    @Option(help: "The final norm's tokens as they are (default) or `projected`: through the CLIP tower's projection (`head.*`), into the space of its projected `cls` — what upstream's NAME_all (ep_all, …) concatenates on open_clip's CLIP towers (linprobe sets it for those commands).")
    var tokens = "patches"

    var given: Bool { model != nil || weights != nil }

    func config() throws -> ViTConfig {
        guard let model else { throw BackboneError("--model is needed with --weights") }
        var c = try ViTRegistry.resolve(model)
        if let activation {
            switch activation {
            case "gelu": c.activation = .gelu
            case "quick_gelu": c.activation = .quickGELU
            case "gelu_tanh": c.activation = .tanhGELU
            default: throw BackboneError("--activation \(activation): gelu, quick_gelu or gelu_tanh")
            }
        }
        if let posEmbedResize {
            guard let r = PosEmbedResize(rawValue: posEmbedResize) else {
                throw BackboneError("--pos-embed-resize \(posEmbedResize): \(PosEmbedResize.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            c.posEmbedResize = r
        }
        return c
    }

    /// `--weights`, else timm's checkpoint for `--model NAME.TAG` from the Hugging Face hub
    /// (`timm/NAME.TAG`, `model.safetensors`), through the cache timm and huggingface_hub share.
    func weightsPath() throws -> String {
        if let weights { return weights }
        guard let model else { throw BackboneError("--weights needs --model (the architecture)") }
        return try HubDownloader().file(repo: try TimmHub.repository(forModel: model), file: "model.safetensors").path
    }

    func load(_ ctx: KernelContext, weights: String) throws -> VisionTransformer {
        guard let model else { throw BackboneError("a backbone needs --model") }
        let chosen: Precision
        if let precision {
            guard let p = Precision(rawValue: precision) else { throw BackboneError("--precision \(precision): fp32 or fp16") }
            chosen = p
        } else {
            chosen = .standard(for: ctx.device.capabilities)
        }
        var vitWeights = try ViTWeights(config: try config(), file: try SafeTensorsFile(path: weights), model: model)
        if posEmbedResize != nil { vitWeights = vitWeights.with(posEmbedResize: try config().posEmbedResize) }   // the flag over the file's metadata
        guard cls == "head" || cls == "token" else { throw BackboneError("--cls \(cls): head or token") }
        if cls == "token" { vitWeights = vitWeights.withoutPooledHead() }
        if let note = vitWeights.storedGridNote { say("note: \(note)") }
        guard tokens == "patches" || tokens == "projected" else { throw BackboneError("--tokens \(tokens): patches or projected") }
        if tokens == "projected" && vitWeights.pooledHead != .projection {
            throw BackboneError("--tokens projected: \(model) has no CLIP projection (`head.*` of a CLIP tower\(cls == "token" ? "; --cls token leaves it out" : "")) to project its tokens with")
        }
        let vit = try VisionTransformer(weights: vitWeights, ctx: ctx, precision: chosen)
        vit.projectTokens = tokens == "projected"
        return vit
    }
}

/// An image dataset on disk and how its images are loaded.
struct ImageDataOptions: ParsableArguments {
    @Option(help: "Dataset root directory (layouts: see --dataset and the README).") var data: String?
    @Option(help: "Layout of --data: imagefolder (DIR/train/<class>/*.jpg and DIR/val/<class>/*.jpg), imagenet1k (the same), CIFAR10, CIFAR100 (torchvision's Python pickles or the binary versions), CUB200, OxfordIIITPet, Food101, DTD, FGVCAircraft, SUN397, Places365, StanfordCars (torchvision's layout; its devkit .mat files read directly), STL10 (stl10_binary/, the train and test splits).")
    var dataset = "imagefolder"
    @Option(help: "Input size S. Default: the family's protocol (224 for DINOv2 whatever its table's size, as upstream's --input_size; the tower's for CLIP and SigLIP, as open_clip).")
    var imageSize: Int?
    @Option(help: "Transforms: mae (RandomResizedCrop(S, 0.08–1) + flip; Resize(int(S·256/224)) + CenterCrop(S)), clip (open_clip's: RandomResizedCrop(S, 0.9–1), no flip; Resize(S) + CenterCrop(S)), siglip (the same training crop; eval squashed to S × S), squash (as siglip: open_clip's 378-px CLIP towers), pe (as squash with PIL's bilinear filter: PE-Core). Default: the family's.")
    var transforms: String?
    @Flag(help: "Download the dataset as torchvision does (its URLs, archives and MD5s) into --data in torchvision's layout, resumable; then read it (CIFAR10/100, DTD, Food101, OxfordIIITPet, FGVCAircraft, SUN397, CUB200, Places365 at 256 px, STL10).") var download = false
    @Option(help: "Decoding threads (default: every core of this machine).") var workers: Int?
    @Flag(help: "Decode every image first and fail, listing them, if any cannot be read (default: skip them, reported by name).")
    var strict = false
    @Option(help: "Unreadable images a split may have before the run stops, naming them: a share (1%, 0.5%) or a count (0 = none). They are left out, counted in the summary line, summary.json and extract.json.")
    var maxUnreadable = "1%"

    func unreadablePolicy() throws -> UnreadablePolicy { try UnreadablePolicy(parsing: maxUnreadable) }

    /// The family's protocol with this command line's overrides (input size, transforms).
    func probingProtocol(_ config: ViTConfig) throws -> ProbingProtocol {
        var p = ProbingProtocol.upstream(for: config)
        if let imageSize { p.inputSize = imageSize }
        guard p.inputSize >= config.patchSize, p.inputSize <= 4096 else { throw DataError("--image-size \(p.inputSize): expected \(config.patchSize) to 4096 px") }
        if let transforms {
            guard let t = TransformFamily(rawValue: transforms) else { throw DataError("--transforms \(transforms): \(TransformFamily.allCases.map(\.rawValue).joined(separator: ", "))") }
            p.transforms = t
        }
        return p
    }

    /// One split (`nil`: --data itself as one ImageFolder) through `transform`.
    func source(split train: Bool?, transform: ImageTransform, normalization: Normalization, views: Int = 1) throws -> DatasetImages {
        guard let data else { throw DataError("--data DIR is needed") }
        if download {
            try DatasetDownloads.ensure(dataset, root: URL(fileURLWithPath: data), environment: CommandLineEnvironment.values)
        }
        let dataset = try ImageDatasets.open(dataset, root: URL(fileURLWithPath: data), train: train)
        for note in (dataset as? FileListDataset)?.notes ?? [] { say("note: \(note)") }
        let images = try DatasetImages(dataset: dataset, transform: transform, normalization: normalization, views: views, workers: workers ?? ProcessInfo.processInfo.activeProcessorCount)
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
    /// The protocol's statistics: upstream feeds ImageNet's to every backbone but open_clip's
    /// towers, whatever the checkpoint's config says (EVA-02 and AIMv2 carry CLIP's).
    init(_ p: ProbingProtocol) { self.init(mean: p.mean, std: p.std) }
}
