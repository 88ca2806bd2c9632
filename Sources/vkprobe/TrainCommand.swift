import ArgumentParser
import Foundation
import Logging
import ProbeBackbones
import ProbeData
import ProbeHeads
import ProbeKernels
import ProbeShaders
import ProbeTraining
import VulkanCompute

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train and evaluate probe heads with the upstream protocol, several heads from one pass: on token files, or on images through a frozen ViT.",
        discussion: """
        Token files: --train-tokens and --val-tokens (from `vkprobe extract`).
        Images: --model, --weights, --data (and --dataset); the backbone runs every step on augmented
        images as upstream does, or with --cache-tokens once per image (or --views K augmented views)
        into OUTPUT/tokens/, the heads then training on the cache.
        """)

    @Option(help: "Training tokens: a safetensors file or shard directory with tokens (S, N, D) f32/f16, labels (S,) i32/i64, optional cls (S, D).") var trainTokens: String?
    @Option(help: "Validation tokens, same layout.") var valTokens: String?
    @OptionGroup var backbone: BackboneOptions
    @OptionGroup var data: ImageDataOptions
    @Option(name: .customLong("blocks"), parsing: .unconditional, help: "With images: the block whose output the heads probe (-1 the last, before the final norm; `norm` after it; default: what upstream probes for the family — -1 for MAE-style ViTs, norm for DINOv2, CLIP, SigLIP). Several (e.g. 4,8,11,norm, with --cache-tokens): layer-wise probing as the paper runs it — every head on every tap, all taps from one backbone pass per image; each head's runs go to DIR/<head>[/<setting>]/<tap>.") var blocks: String?
    @Option(help: "The heads' arithmetic: fp32 (the default here), or mixed precision with GEMM operands in fp16 (dynamic loss scaling) or bf16 (fp32 accumulation, results and master weights either way). Mixed precision needs 16-bit storage. (--precision sets the backbone's storage.)") var headPrecision = "fp32"
    @Option(help: "Upstream's spelling: float16, bfloat16 or none (= --head-precision fp16, bf16, fp32). Upstream defaults to float16 (its published runs used bfloat16); here the default is none (fp32), because on CPU devices (lavapipe) 16-bit operands only add conversions, and a GPU run asks for it.") var amp: String?
    @Option(help: "With images: fine-tune the backbone with the head (one head per run): `all` (upstream's --finetuning: every parameter, embeddings included) or K (the last K blocks and the final norm; the blocks before run forward only). Same optimiser, schedule and accumulation as the head; the model is saved in timm's names as OUTPUT/<head>/backbone-last.safetensors (and backbone-best).") var finetune: String?
    @Flag(help: "With --finetune: keep only each trained block's input and recompute its activations in the backward (the same numbers; less device memory, about one more forward of the trained blocks).") var gradCheckpoint = false
    @Flag(help: "With images: run the backbone once per image (or --views K augmented views) and train on the cached tokens (OUTPUT/tokens/).") var cacheTokens = false
    @Option(help: "The frozen backbone while the heads train: eval (deterministic) or train (as upstream's engine_finetune leaves it: BEiTv2/SimMIM's drop path 0.1, DINOv3's RoPE rescale in [½, 2], drawn per batch from --seed; evaluation stays in eval mode; needs images without --cache-tokens).") var backboneMode = "eval"
    @Option(help: "With --cache-tokens: augmented views per training image (epoch e uses view e mod K); 1 without augmentation.") var views = 1
    @Flag(help: "With images: no training augmentation (the eval transform on the training split too).") var noAugment = false
    @Option(help: "With images: images per backbone pass when caching tokens.") var extractBatchSize = 64
    @Option(help: "Comma-separated heads: ep, lp (= lp_cls, the linear probe on [CLS], upstream's default), lp_gap (on the mean of the patches, upstream's `pos`), abmilp, simpool, ..., NAME_all (attentive pooling over [CLS] + patches).") var heads = "ep,lp"
    @Option(help: "Output directory: DIR/<head>/metrics.jsonl, checkpoints, curves.svg; DIR/summary.json.") var output: String
    @Option(help: "Epochs.") var epochs = 90
    @Option(help: "Batch size per step of each process, as upstream's per-GPU --batch_size: under mpirun with N processes the step's batch is N × this (the lr scales with it).") var batchSize = 512
    @Option(help: "The step's batch over all processes instead (split evenly among them); a run resumes only with the same global batch.") var globalBatchSize: Int?
    @Option(help: "Gradient accumulation steps.") var accumIter = 1
    @Option(help: "lars (upstream default), sgd or adamw.") var optimizer = "lars"
    @Option(help: "Base learning rate: lr = blr × effective batch / 256. A comma-separated list sweeps it (every head × value trained from the same batches).") var blr = "0.1"
    @Option(help: "Absolute learning rate (overrides --blr); a list sweeps it.") var lr: String?
    @Option(help: "Final learning rate of the cosine schedule.") var minLR = 0.0
    @Option(help: "Linear warm-up epochs.") var warmupEpochs = 10.0
    @Option(help: "Weight decay; a list sweeps it.") var weightDecay = "0"

    @Option(help: "Momentum (default: 0.9 for lars, 0 for sgd as upstream builds SGD).") var momentum: Double?
    // Head options: nil when not given, so that a checkpoint (--eval-only, --init-head) can decide them.
    @Option(help: "EP queries Q; a list sweeps it (default 32, or the checkpoint's with --eval-only / --init-head).") var epQueries: String?
    @Option(help: "Heads of aim and jepa (default 16, or the checkpoint's arguments).") var numHeads: Int?
    @Option(help: "EP's --d_out: its values, and so the classifier's input, are D / d_out wide (upstream's default 1).") var epDOut: Int?
    @Option(help: "AB-MILP's score-predictor activation: tanh (upstream's default) or relu.") var abmilpAct: String?
    @Option(help: "AB-MILP's self-attention: both (upstream's default: it feeds the scores and the pooled values), map (the scores only) or none.") var abmilpSa: String?
    @Option(help: "AB-MILP's score-predictor depth (Linear layers; upstream's default 2).") var abmilpDepth: Int?
    @Option(help: "AB-MILP's conditioning: none (upstream's default) or pe (a fixed 2-D sin-cos position embedding added to the predictor's input).") var abmilpCond: String?
    @Option(help: "AB-MILP's content: all (upstream's default) or patch (the first token, abmilp_all's [CLS], dropped).") var abmilpContent: String?
    @Option(help: "Classes (default: from the labels).") var classes: Int?
    @Option(help: "Seed (initialisation, shuffling, low-shot subsets).") var seed: UInt64 = 0
    @Option(help: "Low-shot: K training samples per class.") var shots: Int?
    @Option(help: "Low-shot: this fraction of each class.") var labelFraction: Double?
    @Flag(help: "Early stopping on a val acc@1 plateau (upstream --early_stop).") var earlyStop = false
    @Option(help: "Early stopping: epochs in a row without progress before stopping.") var earlyStopPatience = 5
    @Option(help: "Early stopping: val acc@1 gain (points) over the best progress that counts as progress.") var earlyStopMinDelta = 0.1
    @Option(help: "Early stopping: never stop before this many epochs.") var earlyStopMinEpochs = 15
    @Flag(help: "Continue the run under --output where it stopped: the token cache's extraction, then each head after its last completed epoch (DIR/<head>/checkpoint-last.state.safetensors). Refused when there is nothing to continue.") var resume = false
    @Flag(help: "Upstream's --auto_resume: continue when --output holds a run to continue, else start.") var autoResume = false
    @Option(help: "Profile this many training steps of the first epoch (GPU timestamps around every dispatch): a per-op table, and OUTPUT/profile.json.") var profile = 0
    @Flag(help: "Replace a run already under --output (its heads' checkpoints, metrics, summary and report) instead of refusing to; the token cache is kept when it matches.") var overwrite = false
    @Flag(help: "Only evaluate: the heads saved under --output (their last epoch), or given by --init-head; implies --resume.") var evalOnly = false
    @Option(help: "HEAD=FILE: start HEAD from a checkpoint's weights instead of its initialisation (upstream's state_dict names: a head trained by upstream's code and saved with save_file(head.state_dict()), or one of ours); repeatable.") var initHead: [String] = []
    @Flag(help: "Write TensorBoard event files (upstream's SummaryWriter tags: test_v1_<head>/train_acc1, …/test_acc1, …/test_loss, loss, lr) into OUTPUT/tensorboard, or --log-dir.") var tensorboard = false
    @Option(help: "Where TensorBoard events go (upstream's --log_dir); implies --tensorboard.") var logDir: String?
    @OptionGroup var flags: DeviceFlags
    @OptionGroup var logging: LoggingOptions

    func run() throws {
        try reportingErrors {
            try Destination.folder(output)
            // Decided before anything is written: whether the output holds a run to continue.
            let hadProgress = Trainer.hasProgress(URL(fileURLWithPath: output))
            if resume && !hadProgress && !evalOnly {
                throw TrainingError("--resume: nothing to continue under \(output) (no training state, summary or token cache); run without --resume to start (or with --auto-resume, which starts when there is nothing to continue)")
            }
            guard let kind = OptimizerKind(rawValue: optimizer) else {
                throw TrainingError("--optimizer \(optimizer): expected one of \(OptimizerKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            if shots != nil && labelFraction != nil { throw TrainingError("--shots and --label-fraction are exclusive") }
            if gradCheckpoint && finetune == nil { throw TrainingError("--grad-checkpoint recomputes a fine-tuned backbone's blocks: add --finetune") }
            func doubles(_ s: String, _ flag: String) throws -> [Double] {
                let v = s.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
                guard !v.isEmpty, v.allSatisfy({ $0 != nil && $0!.isFinite && $0! >= 0 }) else { throw TrainingError("\(flag) \(s): expected non-negative numbers, comma-separated") }
                return v.map { $0! }
            }
            let blrs = try doubles(blr, "--blr"), lrs = try lr.map { try doubles($0, "--lr") }, wds = try doubles(weightDecay, "--weight-decay")
            // Options the head checkpoints decide, for the flags not given.
            let headList = heads.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
            var checkpointFiles = initHead.compactMap { $0.split(separator: "=", maxSplits: 1).dropFirst().first.map(String.init) }
            if evalOnly {
                checkpointFiles += headList.map { URL(fileURLWithPath: output).appendingPathComponent("\($0)/checkpoint-last.safetensors").path }
                    .filter { FileManager.default.fileExists(atPath: $0) }
            }
            // Unreadable files are reported by the step that loads them, naming the flag.
            let found = checkpointFiles.compactMap { try? HeadCheckpointOptions(path: $0) }
            let decided = HeadCheckpointOptions.agreed(found)
            var notes = Set<String>()
            func pick<T>(_ flag: T?, _ fromCheckpoint: T?, _ fallback: T, _ name: String) -> T {
                if let flag { return flag }
                if let c = fromCheckpoint {
                    for src in found.flatMap(\.sources) where src.hasPrefix(name + " ") { notes.insert(src) }
                    return c
                }
                return fallback
            }
            let epQueries = pick(epQueries, decided.queries.map(String.init), "32", "--ep-queries")
            let numHeads = pick(numHeads, decided.numHeads, 16, "--num-heads")
            let epDOut = pick(epDOut, decided.dOut, 1, "--ep-d-out")
            let abmilpAct = pick(abmilpAct, decided.abmilp["act"], "tanh", "--abmilp-act")
            let abmilpSa = pick(abmilpSa, decided.abmilp["sa"], "both", "--abmilp-sa")
            let abmilpDepth = pick(abmilpDepth, decided.abmilp["depth"].flatMap(Int.init), 2, "--abmilp-depth")
            let abmilpCond = pick(abmilpCond, decided.abmilp["cond"], "none", "--abmilp-cond")
            let abmilpContent = pick(abmilpContent, decided.abmilp["content"], "all", "--abmilp-content")
            for n in notes.sorted() { say("head options: \(n)") }
            let qs = try epQueries.split(separator: ",").map { q -> Int in
                guard let v = Int(q.trimmingCharacters(in: .whitespaces)), v > 0 else { throw TrainingError("--ep-queries \(epQueries): positive integers, comma-separated") }
                return v
            }
            if lrs != nil && blrs.count > 1 { throw TrainingError("--lr overrides --blr: sweep one of them") }
            var config = TrainingConfig(heads: heads.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) })
            config.epochs = epochs; config.batchSize = batchSize; config.accumIter = accumIter
            config.optimizer = OptimizerConfig(kind: kind, weightDecay: wds[0], momentum: momentum)
            config.blr = blrs[0]; config.lr = lrs?[0]; config.minLR = minLR; config.warmupEpochs = warmupEpochs
            config.queries = qs[0]; config.numHeads = numHeads; config.classes = classes; config.seed = seed
            config.epDOut = epDOut
            guard let act = ABMILPOptions.Activation(rawValue: abmilpAct), let sa = ABMILPOptions.SelfAttention(rawValue: abmilpSa),
                  ["none", "pe"].contains(abmilpCond), ["all", "patch"].contains(abmilpContent), abmilpDepth >= 1, epDOut >= 1 else {
                throw TrainingError("--abmilp-act tanh|relu, --abmilp-sa none|map|both, --abmilp-depth ≥ 1, --abmilp-cond none|pe, --abmilp-content all|patch, --ep-d-out ≥ 1")
            }
            config.abmilp.activation = act; config.abmilp.selfAttention = sa; config.abmilp.depth = abmilpDepth
            config.abmilp.positionCondition = abmilpCond == "pe"; config.abmilp.patchOnly = abmilpContent == "patch"
            if blrs.count > 1 { config.sweep.blr = blrs }
            if let lrs, lrs.count > 1 { config.sweep.lr = lrs }
            if wds.count > 1 { config.sweep.weightDecay = wds }
            if qs.count > 1 { config.sweep.queries = qs }
            config.shots = shots; config.labelFraction = labelFraction
            guard let chosen = HeadPrecision(rawValue: headPrecision) else {
                throw TrainingError("--head-precision \(headPrecision): expected one of \(HeadPrecision.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            if let amp {
                let spelled: [String: HeadPrecision] = ["float16": .fp16, "bfloat16": .bf16, "none": .fp32]
                guard let p = spelled[amp] else { throw TrainingError("--amp \(amp): float16, bfloat16 or none (upstream's choices)") }
                if headPrecision != "fp32" && chosen != p { throw TrainingError("--amp \(amp) and --head-precision \(headPrecision) disagree; give one") }
                config.precision = p
            } else {
                config.precision = chosen
            }
            if earlyStop { config.earlyStop = EarlyStopping(patience: earlyStopPatience, minDelta: earlyStopMinDelta, minEpochs: earlyStopMinEpochs) }
            // Started by mpirun: one process per device, data-parallel (see ProcessGroup).
            let group: ProcessGroup = MPIGroup.launchedByMPI ? try MPIGroup() : SingleProcess()
            // MPI_Finalize only after success: a rank that fails exits without it, and mpirun
            // then stops the others instead of leaving them waiting in a collective.
            var succeeded = false
            defer { if succeeded { (group as? MPIGroup)?.finish() } }
            let lead = group.rank == 0
            // Upstream's --batch_size is per GPU: N processes make an N-times larger step.
            config.batchSize = globalBatchSize ?? batchSize * group.size
            let options = try flags.options(for: group)
            let device = try ComputeDevice(options: options, shaders: BundledShaders.shared)
            if config.precision != .fp32 && !device.capabilities.storageBuffer16BitAccess {
                throw TrainingError("--head-precision \(config.precision.rawValue)\(amp.map { " (--amp \($0))" } ?? "") needs 16-bit storage buffers, which \(device.name) does not offer; train in fp32 (--head-precision fp32, the default)")
            }
            let ctx = try KernelContext.commandLine(device)
            var trainers: [Trainer] = []
            let out = URL(fileURLWithPath: output)
            var backboneFeatures: [BackboneFeatures] = []
            var backboneRecord: RunBackbone?
            var unreadable: [String: UnreadableReport] = [:]
            var tallies: [String: UnreadableTally] = [:]
            switch (trainTokens, valTokens, backbone.given) {
            case let (t?, v?, false):
                trainers = [try Trainer(config: config, ctx: ctx, train: try TokenDataset(path: t), val: try TokenDataset(path: v), output: out)]
            case (nil, nil, true):
                let vitConfig = try backbone.config()
                let weightsPath = try backbone.weightsPath()
                let vit = try backbone.load(ctx, weights: weightsPath)
                var proto = try data.probingProtocol(vitConfig)
                if let blocks {
                    guard cacheTokens || !blocks.contains(",") else {
                        throw TrainingError("--blocks \(blocks): layer-wise probing reads every tap from a token cache made in one backbone pass per image; add --cache-tokens")
                    }
                    proto.tap = blocks
                }
                proto.setCLS(pooledHead: vit.pooledHead?.rawValue, classToken: vitConfig.classToken)
                if vit.projectTokens { proto.tokensProjected = true }
                guard backboneMode == "eval" || backboneMode == "train" else { throw TrainingError("--backbone-mode \(backboneMode): eval or train") }
                var trainMode: TrainModeNoise?
                if backboneMode == "train" {
                    guard !cacheTokens else { throw TrainingError("--backbone-mode train: the backbone's train-mode randomness is drawn anew for every batch, so its tokens cannot be cached; drop --cache-tokens") }
                    trainMode = TrainModeNoise.upstream(for: vitConfig)
                    if trainMode == nil {
                        say("note: --backbone-mode train: \(backbone.model!)'s forward has no train-time randomness (no drop path, no RoPE rescale), so train mode is eval mode here")
                    } else {
                        proto.backboneTrainMode = true
                    }
                }
                let taps = try proto.tap.split(separator: ",").map { try TokenTap.parse(String($0).trimmingCharacters(in: .whitespaces), depth: vitConfig.depth) }
                guard Set(taps).count == taps.count else { throw TrainingError("--blocks \(proto.tap): a tap is listed twice") }
                let tap = taps[0]
                if let finetune {
                    guard !cacheTokens else { throw TrainingError("--finetune trains the backbone, so its tokens change every step: it cannot train on a token cache (drop --cache-tokens)") }
                    config.finetune = try FineTuneScope.parse(finetune, depth: vitConfig.depth)
                    config.gradCheckpoint = gradCheckpoint
                    try TrainableViT<GPUBackend>.check(vitConfig)
                }
                let size = proto.inputSize
                let norm = Normalization(proto)
                guard views >= 1, views == 1 || (cacheTokens && !noAugment) else {
                    throw DataError("--views \(views) needs --cache-tokens with augmentation")
                }
                let transforms = proto.transforms.transforms(size: size)
                let trainTransform: ImageTransform = noAugment ? .eval(transforms.eval) : .train(transforms.train, seed: seed)
                let trainImages = try data.source(split: true, transform: trainTransform, normalization: norm, views: cacheTokens ? views : 1)
                let valImages = try data.source(split: false, transform: .eval(transforms.eval), normalization: norm)
                let policy = try data.unreadablePolicy()
                if lead {
                    var record = RunBackbone(model: backbone.model!.hasSuffix(".json") ? URL(fileURLWithPath: backbone.model!).standardizedFileURL.path : backbone.model!, weights: URL(fileURLWithPath: weightsPath).standardizedFileURL.path, tap: tap.description,
                                             imageSize: size, mean: norm.mean, std: norm.std, classes: trainImages.dataset.classes)
                    record.probing = proto
                    backboneRecord = record   // written once the output is known to be this run's
                }
                say(proto.line)
                say("\(backbone.model!) (\(vit.precision.rawValue)) at \(taps.map(\.description).joined(separator: ", ")) on \(device.name): train \(trainImages.description); val \(valImages.description)")
                if cacheTokens {
                    var sets: [[TokenTap: TokenDataset]] = []
                    for (name, images, v) in [("train", trainImages, cacheTokens ? views : 1), ("val", valImages, 1)] as [(String, DatasetImages, Int)] {
                        let job = try TokenExtraction(vit: vit, model: backbone.model!, weightsPath: weightsPath, images: images, taps: taps,
                                                      output: out.appendingPathComponent("tokens").appendingPathComponent(name),
                                                      batchSize: extractBatchSize, outputF16: vit.precision == .fp16, views: v, protocol: proto)
                        // Across processes each extracts its shards (k ≡ rank mod N) of the one cache;
                        // the sum over the group waits until every shard is written.
                        job.rank = group.rank; job.ranks = group.size
                        job.unreadablePolicy = policy
                        job.split = "\(name) split (\(images.dataset.description))"
                        job.logger = ConsoleLog.logger("vkprobe.training", rank: group.rank, ranks: group.size)
                        let dirs = try job.run()
                        unreadable[name] = job.unreadable
                        var written = [1.0]
                        try group.allReduceSum(&written)
                        sets.append(try dirs.mapValues { try TokenDataset(path: $0.path) })
                    }
                    for t in taps {
                        var c = config
                        if taps.count > 1 { c.tap = t.description }
                        trainers.append(try Trainer(config: c, ctx: ctx, train: sets[0][t]!, val: sets[1][t]!, output: out))
                    }
                } else {
                    backboneFeatures = [try BackboneFeatures(images: trainImages, vit: vit, tap: tap), try BackboneFeatures(images: valImages, vit: vit, tap: tap)]
                    backboneFeatures[0].trainMode = trainMode.map { ($0, seed) }
                    for (f, name) in zip(backboneFeatures, ["train", "val"]) {
                        let source = f.images as! DatasetImages
                        let t = UnreadableTally(split: "\(name) split (\(source.dataset.description))", images: source.dataset.count, policy: policy)
                        f.tally = t
                        tallies[name] = t
                    }
                    trainers = [try Trainer(config: config, ctx: ctx, train: backboneFeatures[0], val: backboneFeatures[1], output: out)]
                }
            default:
                if finetune != nil && !backbone.given { throw TrainingError("--finetune trains a backbone: give --model, --weights and --data (token files hold no backbone)") }
                throw TrainingError("give either --train-tokens and --val-tokens, or --model, --weights and --data")
            }
            // An earlier run under --output is continued (--resume, --auto-resume, --eval-only) or
            // replaced on request (--overwrite); otherwise refused, naming what differs. Nothing is written before this.
            if !resume && !autoResume && !evalOnly {
                let earlier = trainers.flatMap { $0.existingRuns() }
                if !earlier.isEmpty && !overwrite {
                    let lines = earlier.map { e in
                        "\(e.head): \(e.epochs) epoch\(e.epochs == 1 ? "" : "s") done" + (e.differences.isEmpty ? ", the same settings" : ", other settings — \(e.differences.joined(separator: "; "))")
                    }
                    let same = earlier.allSatisfy { $0.differences.isEmpty }
                    throw TrainingError("\(output) already holds a run (\(lines.joined(separator: "; "))): "
                                        + (same ? "continue it with --resume, " : "continue it with its own options and --resume, ")
                                        + "write to another --output, or pass --overwrite to replace it (nothing was written)")
                }
                if !earlier.isEmpty && lead {
                    for t in trainers { try t.removeEarlierRun() }
                    say("note: --overwrite: the earlier run under \(output) (\(earlier.map(\.head).joined(separator: ", "))) was removed")
                }
            }
            if let record = backboneRecord { try record.write(to: out) }
            var summary: [String: HeadSummary] = [:]
            var lastTrainer: Trainer?
            for trainer in trainers {
                trainer.group = group
                if !lead {
                    trainer.logger.logLevel = .warning   // rank 0 speaks for the group
                } else if ConsoleLog.stdoutIsTerminal {
                    trainer.progress = { line in ConsoleLog.write("\r\u{1B}[K\(line)", toStandardError: false) }
                }
                for f in backboneFeatures { f.logger = trainer.logger }
                if backbone.given {
                    let fixed = unreadable
                    trainer.unreadableReports = { fixed.merging(tallies.mapValues(\.report)) { a, _ in a } }
                }
                trainer.profileSteps = profile
                if (tensorboard || logDir != nil) && lead {
                    let dir = logDir.map { URL(fileURLWithPath: $0) } ?? out.appendingPathComponent("tensorboard")
                    trainer.tensorBoard = try TensorBoardWriter(directory: dir)
                    trainer.log("TensorBoard events: \(trainer.tensorBoard!.path.path)")
                }
                if let t = trainer.config.tap { trainer.log("layer-wise: the heads on \(t)") }
                if evalOnly {
                    try trainer.resume(flag: "--eval-only", evalOnly: true,
                                       initialized: Set(initHead.compactMap { $0.split(separator: "=", maxSplits: 1).first.map(String.init) }))
                } else if resume || (autoResume && hadProgress) {
                    try trainer.resume(flag: resume ? "--resume" : "--auto-resume")
                }
                for spec in initHead {
                    let parts = spec.split(separator: "=", maxSplits: 1).map(String.init)
                    guard parts.count == 2 else { throw TrainingError("--init-head \(spec): HEAD=FILE") }
                    try trainer.initialize(head: parts[0], from: parts[1])
                }
                if lead && group.size > 1 {
                    trainer.log("data-parallel over \(group.size) processes (Open MPI): batch \(config.batchSize) = \(group.size) × \(config.batchSize / group.size)"
                                + (globalBatchSize == nil ? " (--batch-size per process)" : " (--global-batch-size)")
                                + ", effective \(config.batchSize * config.accumIter) with --accum-iter \(config.accumIter); rank 0 on \(device.name)")
                }
                summary.merge(try trainer.run(evalOnly: evalOnly)) { _, b in b }
                lastTrainer = trainer
            }
            succeeded = true
            guard lead else { return }
            say("peak device memory \(formatBytes(device.memory.peakUsedBytes)) (budget \(formatBytes(device.memory.budget)))")
            if let run = try? JSONDecoder().decode(RunSummary.self, from: Data(contentsOf: URL(fileURLWithPath: output).appendingPathComponent("summary.json"))),
               let best = run.best {
                print("best setting per head (val acc@1): " + best.sorted(by: { $0.key < $1.key }).map { "\($0.key) → \($0.value)" }.joined(separator: ", "))
            }
            if let reports = lastTrainer?.unreadableReports?() {
                print("images: " + reports.sorted { $0.key > $1.key }.map { "\($0.key) \($0.value.line)" }.joined(separator: "; ")
                      + (reports.values.contains { $0.unreadable > 0 } ? " (named above; left out)" : ""))
            }
            print("\nsummary (\(output)/summary.json):")
            let width = max(10, (summary.keys.map(\.count).max() ?? 0) + 1)
            for (name, s) in summary.sorted(by: { $0.key < $1.key }) {
                print("  \(name.padding(toLength: width, withPad: " ", startingAt: 0)) best acc@1 \(String(format: "%.2f", s.best_acc1))% (epoch \(s.best_epoch)), acc@5 \(String(format: "%.2f", s.acc5))%, \(s.params) params, \(s.status)")
            }
        }
    }
}

struct SynthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synth",
        abstract: "Write a synthetic token task: the class is carried by two tokens at random places among N.")
    @Option(help: "Output directory (train.safetensors, val.safetensors).") var output: String
    @Option(help: "Training samples.") var trainSamples = 4096
    @Option(help: "Validation samples.") var valSamples = 1024
    @Option(help: "Tokens per sample.") var tokens = 64
    @Option(help: "Token width.") var dim = 64
    @Option(help: "Classes.") var classes = 10
    @Option(help: "Seed.") var seed: UInt64 = 0
    @Option(help: "Norm of the class direction in each signal token.") var signal = 24.0
    @Option(help: "Norm of the marker direction of each signal slot.") var marker = 300.0
    @Option(help: "Std of the per-sample offset shared by all tokens.") var offset = 4.0
    @OptionGroup var logging: LoggingOptions

    func run() throws {
        try reportingErrors {
            try Destination.folder(output)
            for (flag, n) in [("--train-samples", trainSamples), ("--val-samples", valSamples)] where n < 1 { throw TrainingError("\(flag) \(n): at least 1") }
            for (file, n, s) in [("train.safetensors", trainSamples, seed), ("val.safetensors", valSamples, seed &+ 1)] {
                var spec = SyntheticTokens.Spec(samples: n)
                spec.tokens = tokens; spec.dim = dim; spec.classes = classes; spec.seed = s
                spec.signal = signal; spec.marker = marker; spec.sharedOffset = offset
                let path = URL(fileURLWithPath: output).appendingPathComponent(file).path
                try SyntheticTokens.write(spec, to: path)
                print("wrote \(path): \(n) samples, \(tokens) tokens × \(dim), \(classes) classes")
            }
        }
    }
}
