import ArgumentParser
import Foundation
import ProbeBackbones
import ProbeData
import ProbeHub
import ProbeTraining

/// upstream's `main_linprobe.py` command line, as its README writes it, mapped onto `vkprobe train`
/// (`--knn_eval` is answered with the two commands that do it): a user pastes their command. Flags that
/// cannot be honoured are refused by name with the reason; flags about PyTorch's machinery
/// (workers' pinning, distributed setup) are noted and dropped.
struct LinprobeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "linprobe",
        abstract: "upstream's main_linprobe.py flags (--cls_features ep --batch_size 512 --blr 0.1 --data_path … --finetune CKPT …), run as vkprobe train.",
        discussion: """
        --model takes upstream's names (vit_base_patch16, dinov2_vitb14, dinov2_vitb14_reg, ViT-B-16 with
        --openclip) or a timm/registry name; --finetune the checkpoint (timm-named safetensors, a hub tag,
        or a .pth converted on the fly by tools/convert_checkpoint.py with VKPROBE_PYTHON's torch).
        --knn_eval runs vkprobe extract on both splits, then vkprobe knn. Under mpirun, --batch_size is
        per process, as upstream's per-GPU batch. --dry-run (anywhere) prints the commands and stops;
        --overwrite replaces a run already in --output_dir; --log-level LEVEL and --quiet as on every command.
        """)

    @Flag(help: "Print the equivalent vkprobe command and stop.") var dryRun = false
    @Argument(parsing: .captureForPassthrough, help: "main_linprobe.py's flags.") var arguments: [String] = []

    /// upstream's model names (models_vit, torch.hub, open_clip) → registry names.
    static let models: [String: String] = [
        "vit_small_patch16": "vit_small_patch16_224", "vit_base_patch16": "vit_base_patch16_224",
        "vit_large_patch16": "vit_large_patch16_224", "vit_huge_patch14": "vit_huge_patch14_224",
        "dinov2_vits14": "vit_small_patch14_dinov2", "dinov2_vitb14": "vit_base_patch14_dinov2", "dinov2_vitl14": "vit_large_patch14_dinov2",
        "dinov2_vits14_reg": "vit_small_patch14_reg4_dinov2", "dinov2_vitb14_reg": "vit_base_patch14_reg4_dinov2",
        "dinov2_vitl14_reg": "vit_large_patch14_reg4_dinov2",
        "ViT-B-16": "vit_base_patch16_clip_224", "ViT-B-32": "vit_base_patch32_clip_224", "ViT-L-14": "vit_large_patch14_clip_224",
        "ViT-B-16-SigLIP": "vit_base_patch16_siglip_224", "ViT-B-16-SigLIP-256": "vit_base_patch16_siglip_256",
        "ViT-L-16-SigLIP-256": "vit_large_patch16_siglip_256", "ViT-SO400M-14-SigLIP": "vit_so400m_patch14_siglip_224",
        "ViT-L-16-SigLIP2-256": "vit_large_patch16_siglip_256", "ViT-SO400M-14-SigLIP2": "vit_so400m_patch14_siglip_224",
        "ViT-bigG-14-worldwide": "vit_gigantic_patch14_clip_224", "ViT-bigG-14-worldwide-378": "vit_gigantic_patch14_clip_378",
        "EVA02-E-14": "eva02_enormous_patch14_clip_224", "EVA02-E-14-plus": "eva02_enormous_patch14_clip_224",
        "PE-Core-B-16": "vit_pe_core_base_patch16_224", "PE-Core-L-14-336": "vit_pe_core_large_patch14_336",
        "PE-Core-bigG-14-448": "vit_pe_core_gigantic_patch14_448",
        "dinov3_vits16": "vit_small_patch16_dinov3", "dinov3_vits16plus": "vit_small_plus_patch16_dinov3", "dinov3_vitb16": "vit_base_patch16_dinov3",
        "dinov3_vitl16": "vit_large_patch16_dinov3", "dinov3_vith16plus": "vit_huge_plus_patch16_dinov3", "dinov3_vit7b16": "vit_7b_patch16_dinov3",
        "aimv2-large-patch14-224": "aimv2_large_patch14_224", "aimv2-huge-patch14-224": "aimv2_huge_patch14_224",
        "aimv2-1B-patch14-224": "aimv2_1b_patch14_224", "aimv2-3B-patch14-224": "aimv2_3b_patch14_224",
        "franca_vitb14": "franca_vitb14", "franca_vitl14": "franca_vitl14", "franca_vitg14": "franca_vitg14",
    ]
    static let datasets: [String: String] = [
        "imagenet1k": "imagenet1k", "imagenet": "imagenet1k", "imagefolder": "imagefolder", "cifar10": "CIFAR10", "cifar100": "CIFAR100",
        "places365": "Places365", "food101": "Food101", "dtd": "DTD", "fgvc_aircraft": "FGVCAircraft", "fgvcaircraft": "FGVCAircraft",
        "cub200": "CUB200", "oxford_pets": "OxfordIIITPet", "oxfordiiitpet": "OxfordIIITPet", "sun397": "SUN397",
        "stanford_cars": "StanfordCars", "stanfordcars": "StanfordCars", "stl10": "STL10",
    ]

    /// A PyTorch pickle to convert before the run (tools/convert_checkpoint.py), into the run folder.
    struct Conversion: Equatable { var source: String; var target: String; var key: String? }
    /// `--knn_eval`: two extractions, then the k-NN sweep (`--weights` for `final_norm`: the file, or the hub's cached copy).
    struct KNNPlan { var extract: [[String]]; var knn: [String]; var weights: String?; var model: String }
    struct Translation { var args: [String] = []; var notes: [String] = []; var downloads: [String] = []; var conversions: [Conversion] = []; var knn: KNNPlan? }

    /// upstream's hub-only models (torch.hub, Apple's `aim`) → the timm tag holding the same weights,
    /// fetched through the hub cache when no --finetune is given.
    static let hubTags: [String: String] = [
        "dinov2_vits14": "lvd142m", "dinov2_vitb14": "lvd142m", "dinov2_vitl14": "lvd142m",
        "dinov2_vits14_reg": "lvd142m", "dinov2_vitb14_reg": "lvd142m", "dinov2_vitl14_reg": "lvd142m",
        "aimv2-large-patch14-224": "apple_pt", "aimv2-huge-patch14-224": "apple_pt", "aimv2-1B-patch14-224": "apple_pt", "aimv2-3B-patch14-224": "apple_pt",
    ]
    /// upstream's loaders with no model here, by --model prefix, with the reason.
    static let unsupportedModels: [(prefix: String, why: String)] = [
        ("capi_", "CAPI (its own torch.hub architecture) is not supported"),
        ("radio_", "RADIO (NaFlexViT with per-teacher summary heads) is not supported"),
        ("DiT-", "DiT/SiT (diffusion transformers on VAE latents) are not supported"),
        ("SiT-", "DiT/SiT (diffusion transformers on VAE latents) are not supported"),
    ]

    /// Where a pickle is converted to: the run folder, as the command names it.
    static func converted(_ source: String, into output: String) -> String {
        let stem = URL(fileURLWithPath: source).deletingPathExtension().lastPathComponent
        return (output.hasSuffix("/") ? String(output.dropLast()) : output) + "/converted-\(stem).safetensors"
    }

    static func translate(_ pasted: [String]) throws -> Translation {
        var t = Translation()
        // The whole line as upstream's README writes it: the launcher before main_linprobe.py is dropped.
        var argv = pasted
        if let k = argv.firstIndex(where: { $0 == "main_linprobe.py" || $0.hasSuffix("/main_linprobe.py") }) {
            let launcher = argv[..<k]
            if let n = launcher.compactMap({ $0.hasPrefix("--nproc_per_node=") ? $0.split(separator: "=").last.map(String.init) : nil }).first
                ?? launcher.firstIndex(of: "--nproc_per_node").flatMap({ $0 + 1 < k ? launcher[$0 + 1] : nil }) {
                t.notes.append("\(launcher.joined(separator: " ")) dropped: for \(n) processes run `mpirun -n \(n) vkprobe linprobe …` (--batch_size stays per process)")
            } else if !launcher.isEmpty {
                t.notes.append("\(launcher.joined(separator: " ")) dropped")
            }
            argv = Array(argv[(k + 1)...])
        }
        var i = 0
        var model: String?, simmim = false, noCLS = false, francaWeights: String?, dinov3Weights: String?, openclip = false, pretrain: String?, weights: String?, output = "./output_dir", knn = false, temperatures: String?
        var eval = false, resumeFile: String?, returnBlock: String?, heads = "lp", checkpointKey: String?
        var values: [String: String] = [:]
        func value(_ flag: String) throws -> String {
            guard i + 1 < argv.count else { throw ValidationError("\(flag) needs a value") }
            i += 1
            return argv[i]
        }
        let direct: [String: String] = [
            "--batch_size": "--batch-size", "--epochs": "--epochs", "--accum_iter": "--accum-iter", "--input_size": "--image-size",
            "--weight_decay": "--weight-decay", "--optimizer": "--optimizer", "--lr": "--lr", "--blr": "--blr", "--min_lr": "--min-lr",
            "--warmup_epochs": "--warmup-epochs", "--ep_queries": "--ep-queries", "--num_heads": "--num-heads", "--data_path": "--data",
            "--nb_classes": "--classes", "--seed": "--seed", "--num_workers": "--workers", "--amp": "--amp",
            "--early_stop_patience": "--early-stop-patience", "--early_stop_min_delta": "--early-stop-min-delta",
            "--early_stop_min_epochs": "--early-stop-min-epochs", "--log_dir": "--log-dir",
        ]
        // --overwrite is ours (upstream overwrites its --output_dir silently): replace a run already there.
        let flags: [String: String] = ["--early_stop": "--early-stop", "--auto_resume": "--auto-resume", "--overwrite": "--overwrite"]
        let ignored: [String: String] = [
            "--pin_mem": "pinned host memory is PyTorch's", "--no_pin_mem": "pinned host memory is PyTorch's",
            "--dist_eval": "evaluation is always sharded under mpirun", "--dist_on_itp": "processes come from mpirun",
            "--dataloader_affinity_hack": "decoding threads are --workers", "-dlah": "decoding threads are --workers",
        ]
        let ignoredValues: [String: String] = [
            "--device": "the device is chosen by Vulkan (use vkprobe's --device)", "--world_size": "processes come from mpirun",
            "--local_rank": "processes come from mpirun", "--dist_url": "processes come from mpirun",
            "--suffix": "runs are named by --output_dir", "--start_epoch": "--resume continues after the last completed epoch",
        ]
        let refusedFlags: [String: String] = [
            "--radio": "RADIO (NaFlexViT) is not supported", "--use_rasa_head": "Franca's RASA head is not supported",
        ]
        let refusedValues: [String: String] = [
            "--dit_image_size": "DiT/SiT are not supported",
            "--dit_ckpt": "DiT/SiT are not supported", "--vae": "DiT/SiT are not supported",
        ]
        while i < argv.count {
            let raw = argv[i]
            // --flag=value as argparse accepts it.
            var flag = raw, inline: String?
            if raw.hasPrefix("--"), let eq = raw.firstIndex(of: "=") { flag = String(raw[..<eq]); inline = String(raw[raw.index(after: eq)...]) }
            func v() throws -> String { if let inline { return inline }; return try value(flag) }
            if let ours = direct[flag] {
                let x = try v()
                values[flag] = x
                t.args += [ours, x]
            } else if let ours = flags[flag] {
                t.args.append(ours)
            } else if let why = ignored[flag] {
                t.notes.append("\(flag) dropped: \(why)")
            } else if let why = ignoredValues[flag] {
                t.notes.append("\(flag) \(try v()) dropped: \(why)")
            } else if let why = refusedFlags[flag] {
                throw ValidationError("\(flag): \(why)")
            } else if let why = refusedValues[flag] {
                throw ValidationError("\(flag): \(why)")
            } else {
                switch flag {
                case "--model": model = try v()
                case "--openclip": openclip = true
                case "--timm": break   // the registry names are timm's already
                case "--simmim": simmim = true
                case "--no_cls_token": noCLS = true
                case "--franca_weights": francaWeights = try v()
                case "--dinov3_weights": dinov3Weights = try v()
                case "--franca_img_size":
                    t.notes.append("--franca_img_size \(try v()) dropped: the position table's grid comes from the checkpoint (LAION's: 518 px, 37×37), resized to the input as Franca's hub does")
                case "--openclip_pretrain": pretrain = try v()
                case "--finetune": weights = try v()
                case "--finetuning": t.args += ["--finetune", "all"]   // upstream's set_trainable: every parameter
                case "--output_dir": output = try v()
                case "--dataset_name":
                    let d = try v()
                    guard let ours = datasets[d.lowercased()] else { throw ValidationError("--dataset_name \(d): not one VulkanProbe reads (\(datasets.keys.sorted().joined(separator: ", ")))") }
                    t.args += ["--dataset", ours]
                case "--cls_features":
                    let c = try v()
                    heads = ["cls": "lp", "pos": "lp_gap", "gap": "lp_gap"][c] ?? c
                    t.args += ["--heads", heads]
                case "--return_block": returnBlock = try v()
                case "--eval": eval = true
                case "--train_aug":
                    let a = try v()
                    guard a == "default" else { throw ValidationError("--train_aug \(a): only upstream's default augmentation is implemented (aimv2's AutoAugment is not)") }
                case "--checkpoint_key": checkpointKey = try v()
                case "--d_out": t.args += ["--ep-d-out", try v()]
                case "--abmilp_act", "--abmilp_sa", "--abmilp_depth", "--abmilp_cond", "--abmilp_content":
                    t.args += ["--" + flag.dropFirst(2).replacingOccurrences(of: "_", with: "-"), try v()]
                case "--resume":
                    let r = try v()
                    if !r.isEmpty { resumeFile = r }
                case "--knn_eval": knn = true
                case "--T_sweep": temperatures = try v()
                case "--T": let x = try v(); temperatures = temperatures ?? x
                default:
                    throw ValidationError("\(flag): not an option of upstream's main_linprobe.py that VulkanProbe knows; see vkprobe train --help")
                }
            }
            i += 1
        }
        guard let model else { throw ValidationError("--model is needed (upstream's default vit_large_patch16 needs --finetune CHECKPOINT)") }
        if let u = unsupportedModels.first(where: { model.hasPrefix($0.prefix) }) { throw ValidationError("--model \(model): \(u.why)") }
        // upstream's `return_block or depth - 1` over 0-based blocks: 0 and negatives are the last block.
        if let returnBlock {
            guard let k = Int(returnBlock) else { throw ValidationError("--return_block \(returnBlock): an integer (upstream's type=int)") }
            t.args += ["--blocks", k >= 1 ? "\(k)" : "-1"]
            if k < 1 { t.notes.append("--return_block \(k): the last block, as upstream's `return_block or len(blocks) - 1` reads it (and a negative never matches a block)") }
        }
        // --eval restores the model from --resume and evaluates it; otherwise --resume continues training.
        if eval {
            guard let r = resumeFile else { throw ValidationError("--eval needs --resume CHECKPOINT (upstream evaluates that file), or use vkprobe train --eval-only on a run of ours") }
            var head = r
            if !r.hasSuffix(".safetensors") {
                // A head saved by upstream's misc.save_model: converted first (the head and upstream's arguments).
                head = Self.converted(r, into: output)
                t.conversions.append(Conversion(source: r, target: head, key: nil))
            }
            t.args += ["--eval-only", "--init-head", "\(heads)=\(head)"]
        } else if let r = resumeFile {
            t.args.append("--resume")
            t.notes.append("--resume \(r): continuing the run under --output_dir (its training state), not that file")
        }
        // Under --openclip upstream takes the resolution from open_clip, whatever --input_size says.
        if openclip, let i = t.args.firstIndex(of: "--image-size") {
            t.notes.append("--input_size \(t.args[i + 1]) dropped: under --openclip upstream's build_transforms ignores it (open_clip decides the resolution)")
            t.args.removeSubrange(i...(i + 1))
        }
        // SimMIM's loader (BEiTv2, SimMIM rows): BEiT's architecture with its shared relative table.
        var name = simmim && models[model] == "vit_base_patch16_224" ? "beitv2_base_patch16_224" : models[model] ?? model
        // --no_cls_token (I-JEPA): upstream's models_vit without [CLS] (global_pool avg), timm's `_gap_` ViT;
        // upstream's _models_vit passes it to the huge models only.
        if noCLS && !model.contains("huge") {
            t.notes.append("--no_cls_token dropped: upstream's _models_vit applies it to the huge models only; \(model) keeps its [CLS]")
        } else if noCLS {
            let gap = name.replacingOccurrences(of: "_224", with: "_gap_224")
            guard gap != name, (try? ViTRegistry.resolve(gap)) != nil else {
                throw ValidationError("--no_cls_token --model \(model): no ViT without [CLS] of that size is known (vit_huge_patch14 maps to vit_huge_patch14_gap_224)")
            }
            name = gap
            if heads == "lp" { throw ValidationError("--no_cls_token --cls_features cls: without [CLS] upstream feeds the linear probe zeros; use --cls_features pos (global average pooling)") }
        }
        if openclip, let pretrain, !name.contains(".") { name += "." + pretrain }
        if openclip && pretrain == nil && !name.contains(".") { name += ".openai" }   // upstream's --openclip_pretrain default
        if weights == nil, !name.contains("."), let tag = hubTags[model] {
            name += "." + tag
            t.notes.append("--model \(model) without --finetune: upstream loads the published weights; here timm's copy of them, \(name), through the hub cache")
        }
        // upstream's backbone trains in train mode (engine_finetune): drop path / RoPE rescale where the family has them.
        if let c = try? ViTRegistry.resolve(name), TrainModeNoise.upstream(for: c) != nil {
            t.notes.append("upstream runs this backbone in train mode while the heads train (\(c.family == .beit ? "drop path 0.1" : "DINOv3's RoPE rescale")); here it stays in eval mode (cacheable tokens). For upstream's: vkprobe train --backbone-mode train with the arguments below")
        }
        // NAME_all on open_clip's CLIP towers: upstream projects the patch tokens into the CLIP space
        // (CLIPWrapper._project_tokens) and concatenates them after the projected [CLS].
        if openclip, heads.hasSuffix("_all"), (try? ViTRegistry.resolve(name))?.family == .clip {
            t.args += ["--tokens", "projected"]
            t.notes.append("--cls_features \(heads) on an open_clip CLIP tower: the patch tokens go through the tower's projection, as upstream's CLIPWrapper feeds its _all heads (--tokens projected)")
        }
        // Franca: its weights are a .pth on its GitHub release (no timm copy): converted once, given as --finetune.
        if name.hasPrefix("franca_") {
            let release = ["franca_vitb14": "franca_vitb14_In21K", "franca_vitl14": "franca_vitl14_\(francaWeights?.uppercased() == "LAION" ? "Laion600M" : "In21K")",
                           "franca_vitg14": "franca_vitg14_\(francaWeights?.uppercased() == "LAION" ? "Laion600M" : "In21K")"][name] ?? name
            if weights == nil {
                // upstream's hub call downloads Franca's release checkpoint: here fetched once into the
                // cache, then converted into the run folder.
                guard name != "franca_vitg14" else {
                    throw ValidationError("--model franca_vitg14: its release checkpoint comes in tar chunks; download and join them by hand, convert with python3 tools/convert_checkpoint.py, and give --finetune")
                }
                let url = "https://github.com/valeoai/Franca/releases/download/v1.0.0/\(release).pth"
                let cached = ReleaseFiles.cached(url, environment: ProcessInfo.processInfo.environment).path
                t.downloads.append(url)
                weights = cached
                t.notes.append("--franca_weights \(francaWeights ?? "In21K"): Franca's release checkpoint \(url), fetched once into \(cached)")
            } else if let w = francaWeights {
                t.notes.append("--franca_weights \(w): the weights are --finetune \(weights!) (Franca's \(release).pth converted by tools/convert_checkpoint.py)")
            }
        }
        // --dinov3_weights (upstream's `_dinov3`: Meta's checkpoint for the hub model): the backbone's weights,
        // a .pth converted (tools/convert_checkpoint.py maps Meta's names to timm's as timm's filter does).
        if let w = dinov3Weights {
            guard name.hasSuffix("_dinov3") else { throw ValidationError("--dinov3_weights \(w): for --model dinov3_*, not \(model)") }
            if let f = weights, f != w { throw ValidationError("--dinov3_weights \(w) and --finetune \(f): give the weights once") }
            weights = w
        }
        // --finetune: a file, or a hub tag (upstream's README: `--finetune vit_base_patch16_224.mae`), fetched
        // through the hub cache as `--model TAG`; open_clip towers and hub models without it come from the hub by name.
        var weightArgs: [String] = []
        if let weights {
            if weights.hasSuffix(".pth") || weights.hasSuffix(".pt") || weights.hasSuffix(".bin") {
                // A PyTorch pickle: converted once into the run folder (timm's names), then loaded.
                let target = Self.converted(weights, into: output)
                t.conversions.append(Conversion(source: weights, target: target, key: checkpointKey))
                weightArgs = ["--weights", target]
            }
            let isTag = !FileManager.default.fileExists(atPath: weights) && !weights.contains("/") && weights.contains(".")
                && !weights.hasSuffix(".safetensors") && (try? ViTRegistry.resolve(String(weights.split(separator: ".")[0]))) != nil
            if !weightArgs.isEmpty {
                // converted above
            } else if isTag {
                name = weights
                t.notes.append("--finetune \(weights): a hub tag, fetched as --model \(weights) (timm/\(weights) on the Hugging Face hub, into its cache)")
            } else {
                weightArgs = ["--weights", weights]
            }
        } else if !name.contains(".") {
            throw ValidationError("--finetune CHECKPOINT is needed: the backbone's weights as timm-named safetensors, or a hub tag (e.g. vit_base_patch16_224.mae); convert a .pth with tools/convert_checkpoint.py")
        }
        if values["--nb_classes"] == nil { t.notes.append("--nb_classes not given: upstream's default is 1000; here the class count comes from the data") }
        if values["--amp"] == nil { t.notes.append("--amp not given: upstream's default is float16; here the heads train in fp32 (pass --amp float16 for upstream's)") }
        t.args = ["--model", name] + weightArgs + t.args + ["--output", output]
        if knn {
            // upstream's run_knn_eval: no training; the features of both splits once, then k and T
            // swept (raw and final_norm) — here `vkprobe extract` of each split, then `vkprobe knn`.
            guard heads == "lp" || heads == "lp_gap" else {
                throw ValidationError("--knn_eval --cls_features \(heads): k-NN here reads `cls` or `pos` (the mean of the patch tokens), as upstream's runs do")
            }
            var extract = ["--model", name] + weightArgs
            for flag in ["--data", "--dataset", "--image-size", "--workers", "--batch-size"] {
                if let i = t.args.firstIndex(of: flag) { extract += [flag, t.args[i + 1]] }
            }
            let config = try ViTRegistry.resolve(name)
            var tap = ProbingProtocol.upstream(for: config).tap
            if let i = t.args.firstIndex(of: "--blocks") { tap = t.args[i + 1] }
            let folder = try TokenTap.parse(tap, depth: config.depth).description
            let root = (output.hasSuffix("/") ? String(output.dropLast()) : output) + "/tokens"
            t.knn = KNNPlan(extract: ["train", "val"].map { extract + ["--split", $0, "--blocks", tap, "--output", "\(root)/\($0)"] },
                            knn: ["--train-tokens", "\(root)/train/\(folder)", "--val-tokens", "\(root)/val/\(folder)",
                                  "--features", heads == "lp" ? "cls" : "gap", "--temperatures", temperatures ?? "0.07", "--norm-eps", "\(config.normEps)",
                                  "--output", (output.hasSuffix("/") ? String(output.dropLast()) : output) + "/knn.json"],
                            weights: weightArgs.last, model: name)
            t.notes.append("--knn_eval: no training; the tokens of both splits once (vkprobe extract), then vkprobe knn over k = 5 … 200 and T = \(temperatures ?? "0.07"), raw and final_norm")
            return t
        }
        if values["--blr"] == nil && values["--lr"] == nil { t.notes.append("--blr 0.1 (upstream's default)") }
        return t
    }

    func run() throws {
        // Upstream's flags pass through unparsed, so --help and --dry-run are looked for among them.
        if arguments.contains("--help") || arguments.contains("-h") {
            print(VKProbe.helpMessage(for: Self.self))
            return
        }
        let dryRun = self.dryRun || arguments.contains("--dry-run")
        try reportingErrors {
            let arguments = try LoggingOptions.take(from: self.arguments.filter { $0 != "--dry-run" })
            let t = try Self.translate(arguments)
            for n in t.notes { print("note: \(n)") }
            for url in t.downloads {
                print("download: \(url)")
                if !dryRun { _ = try ReleaseFiles.fetch(url, environment: ProcessInfo.processInfo.environment) }
            }
            for c in t.conversions {
                print("convert: \(CheckpointConverter.command(c).joined(separator: " "))")
                if !dryRun { try CheckpointConverter.run(c) }
            }
            func shown(_ a: [String]) -> String { a.map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " ") }
            if let plan = t.knn {
                for e in plan.extract { print("as: vkprobe extract " + shown(e)) }
                print("as: vkprobe knn " + shown(plan.knn) + (plan.weights.map { " --weights \($0)" } ?? " --weights <the hub's copy of \(plan.model)>"))
                if dryRun { return }
                for e in plan.extract { try ExtractCommand.parse(e).run() }
                // final_norm reads the encoder's norm from the checkpoint: the file given, or the one the extraction fetched.
                let weights = try plan.weights ?? BackboneOptions.parse(["--model", plan.model]).weightsPath()
                // upstream's k = 5 … 200, those the training split can hold (upstream's topk fails past it).
                let bank = try TokenDataset(path: plan.knn[1]).samples
                let ks = [5, 10, 15, 20, 50, 100, 200].filter { $0 <= bank }
                guard !ks.isEmpty else { throw ValidationError("--knn_eval: the training split has \(bank) images, fewer than upstream's smallest k (5)") }
                if ks.count < 7 { print("note: k = \(ks.map(String.init).joined(separator: ", ")) only: the training split holds \(bank) images (upstream's sweep goes to 200)") }
                try KNNCommand.parse(plan.knn + ["--weights", weights, "--k", ks.map(String.init).joined(separator: ",")]).run()
                return
            }
            print("as: vkprobe train " + shown(t.args))
            if dryRun { return }
            let train = try TrainCommand.parse(t.args)
            try train.run()
        }
    }
}
