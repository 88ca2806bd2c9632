import Foundation
import Logging
import SafeTensors
import ProbeData
import ProbeAutodiff
import ProbeBackbones
import ProbeHeads
import ProbeKernels
import VulkanCompute

/// Per-head outcome in `summary.json`.
public struct HeadSummary: Codable, Sendable {
    public var best_acc1: Double
    /// The epoch of `best_acc1`, from 1 as the console counts (0: none yet).
    public var best_epoch: Int
    public var acc5: Double
    public var params: Int
    public var epochs_run: Int
    public var status: String
    /// The head (pooling) name and the sweep setting ("" without a sweep).
    public var head: String?
    public var setting: String?
    public var peak_lr: Double?
    public var weight_decay: Double?
    public var ep_queries: Int?
    /// Forward multiply-adds per image, and training images/s measured in this run (GPU
    /// timestamps around the head's forward, backward and optimiser step; the batch is shared).
    public var macs_per_image: Int?
    public var train_images_per_s: Double?
    /// Layer-wise probing: the tap this probe read.
    public var tap: String?
}

/// `summary.json`.
public struct RunSummary: Codable, Sendable {
    public var heads: [String: HeadSummary]
    /// With a sweep: each head's best probe on the validation split (top-1), as DINOv2 selects.
    public var best: [String: String]?
    public var device: String?
    /// Per split ("train", "val"), the images that could not be read, on runs over images.
    public var unreadable: [String: UnreadableReport]?
    /// The most device memory live at once in this process, and the budget it ran under.
    public var peakDeviceMemoryBytes: Int?
    public var deviceMemoryBudgetBytes: Int?
    /// The vkprobe that wrote it: `0.1.0 (commit abc123def456)`.
    public var version: String? = "\(BuildStamp.version) (commit \(BuildStamp.commit))"
    /// 2: snake_case keys throughout and `best_epoch` from 1. Absent (1): the first files, with
    /// camelCase memory keys and `best_epoch` from 0 — still read, as they were meant.
    public var format: Int? = RunSummary.currentFormat
    public static let currentFormat = 2

    public init(heads: [String: HeadSummary], best: [String: String]? = nil, device: String? = nil, unreadable: [String: UnreadableReport]? = nil,
                peakDeviceMemoryBytes: Int? = nil, deviceMemoryBudgetBytes: Int? = nil) {
        self.heads = heads; self.best = best; self.device = device; self.unreadable = unreadable
        self.peakDeviceMemoryBytes = peakDeviceMemoryBytes; self.deviceMemoryBudgetBytes = deviceMemoryBudgetBytes
    }

    enum CodingKeys: String, CodingKey {
        case heads, best, device, unreadable, version, format
        case peakDeviceMemoryBytes = "peak_device_memory_bytes", deviceMemoryBudgetBytes = "device_memory_budget_bytes"
    }
    enum FirstFormatKeys: String, CodingKey { case peakDeviceMemoryBytes, deviceMemoryBudgetBytes }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        heads = try c.decode([String: HeadSummary].self, forKey: .heads)
        best = try c.decodeIfPresent([String: String].self, forKey: .best)
        device = try c.decodeIfPresent(String.self, forKey: .device)
        unreadable = try c.decodeIfPresent([String: UnreadableReport].self, forKey: .unreadable)
        version = try c.decodeIfPresent(String.self, forKey: .version)
        format = try c.decodeIfPresent(Int.self, forKey: .format)
        peakDeviceMemoryBytes = try c.decodeIfPresent(Int.self, forKey: .peakDeviceMemoryBytes)
        deviceMemoryBudgetBytes = try c.decodeIfPresent(Int.self, forKey: .deviceMemoryBudgetBytes)
        if format == nil {
            let first = try decoder.container(keyedBy: FirstFormatKeys.self)
            peakDeviceMemoryBytes = try first.decodeIfPresent(Int.self, forKey: .peakDeviceMemoryBytes)
            deviceMemoryBudgetBytes = try first.decodeIfPresent(Int.self, forKey: .deviceMemoryBudgetBytes)
            for k in heads.keys { heads[k]!.best_epoch += 1 }
            format = RunSummary.currentFormat   // what this value now holds
        }
    }
}

/// Trains several heads from one pass over the features per step: each batch is produced once
/// (read from token files, or run through the backbone) and fed to every head; each head keeps
/// its own parameters, optimiser state, metrics and checkpoints under `output/<head>/`.
public final class Trainer {
    public let config: TrainingConfig
    public let ctx: KernelContext
    public let train: FeatureSource
    public let val: FeatureSource
    public let output: URL
    public let classes: Int
    public private(set) var heads: [HeadRun] = []
    /// Progress lines and notes go through swift-log (info); the command line decides where.
    public var logger = Logger(label: "vkprobe.training")
    public func log(_ line: String) { logger.info("\(line)") }
    public var progress: ((String) -> Void)?
    /// TensorBoard events (`--tensorboard`): upstream's tags per head each epoch
    /// (`test_v1_<head>/train_acc1`, `…/train_loss`, `…/test_acc1`, `…/test_acc5`, `…/test_loss`)
    /// and, at every optimiser step, `loss` and `lr` at step epoch·1000 (per head, `<head>/loss`
    /// and `<head>/lr`, when several train at once).
    public var tensorBoard: TensorBoardWriter?
    /// Called after every epoch (index from 0) once every head has been evaluated and checkpointed.
    public var onEpochEnd: ((Int) throws -> Void)?
    /// Called after every training step with its epoch, step, learning rate and each head's result.
    public var onStep: ((_ epoch: Int, _ step: Int, _ lr: Double, _ results: [String: BatchResult]) -> Void)?
    /// The order of training samples in an epoch (its batches are consecutive runs of it; a last
    /// partial batch is dropped). Default: the seeded shuffle of the (low-shot) training subset.
    public var sampleOrder: ((_ epoch: Int) -> [Int])?
    /// Builds the probe head of a name (default: the registry's heads; custom poolings plug in here).
    public typealias HeadFactory = (_ head: HeadName, _ options: HeadOptions, _ classes: Int) throws -> ProbeHeadLayout
    /// Profile this many training steps (from the second of the first epoch run): the per-op
    /// table is logged and written to `output/profile.json`.
    public var profileSteps = 0
    /// On runs over images: what each split lost so far (written into `summary.json`).
    public var unreadableReports: (() -> [String: UnreadableReport])?
    /// Data-parallel group (`SingleProcess` by default): this process trains on its slice of every
    /// batch; gradients, BatchNorm statistics, metrics and evaluation counts are summed over the
    /// group; only rank 0 writes files.
    public var group: ProcessGroup = SingleProcess() {
        didSet { ctx.batchReducer = group.size > 1 ? group : nil }
    }
    var writes: Bool { group.rank == 0 }
    var resumed = false

    /// A head's initialisation seed: the run's seed and the head's name (FNV-1a), so a head starts
    /// the same whichever other heads train beside it.
    static func headSeed(_ seed: UInt64, _ name: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in name.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return seed ^ h
    }

    public static let defaultHeadFactory: HeadFactory = { head, options, classes in
        ProbeHeadLayout(pooling: try Heads.pooling(head.name, options), classes: classes)
    }

    /// Trains on token files.
    public convenience init(config: TrainingConfig, ctx: KernelContext, train: TokenDataset, val: TokenDataset, output: URL,
                            headFactory: HeadFactory = Trainer.defaultHeadFactory) throws {
        try self.init(config: config, ctx: ctx, train: TokenFeatures(train, ctx: ctx), val: TokenFeatures(val, ctx: ctx), output: output,
                      headFactory: headFactory)
    }

    public init(config: TrainingConfig, ctx: KernelContext, train: FeatureSource, val: FeatureSource, output: URL,
                headFactory: HeadFactory = Trainer.defaultHeadFactory) throws {
        self.config = config; self.ctx = ctx; self.train = train; self.val = val; self.output = output
        guard train.patches == val.patches, train.dim == val.dim else {
            throw TrainingError("token shapes differ: \(train.description) has (N, D) = (\(train.patches), \(train.dim)), \(val.description) has (\(val.patches), \(val.dim))")
        }
        guard train.views >= 1, train.samples % train.views == 0 else {
            throw TrainingError("\(train.description): \(train.samples) samples are not \(train.views) views of one image set")
        }
        guard config.batchSize > 0, config.accumIter > 0, config.epochs > 0 else { throw TrainingError("batch size, --accum-iter and --epochs must be positive") }
        guard !config.heads.isEmpty else { throw TrainingError("no heads to train (--heads)") }
        let observed = max(train.classCount, val.classCount)
        if let c = config.classes {
            guard c > 0, c <= TokenDataset.maxClasses else { throw TrainingError("--classes \(c): expected 1 to \(TokenDataset.maxClasses)") }
            classes = c
        } else {
            classes = observed
        }
        try train.validateLabels(classes: classes)
        try val.validateLabels(classes: classes)
        let settings = config.sweep.settings(config)
        let gpu = GPUBackend(ctx)
        gpu.gemmInputs = config.precision.gemmInputs
        for name in config.heads {
            let head = try HeadName(name)
            if head.selection != .patches && !(train.hasCLS && val.hasCLS) {
                throw TrainingError("head \(name) needs the [CLS] token, but \(train.hasCLS ? val.description : train.description) has none"
                                    + (head.pooling == "lp_cls" ? " (lp_gap is the linear probe on the mean of the patch tokens)" : ""))
            }
            guard !heads.contains(where: { $0.name == name }) else { throw TrainingError("head \(name) is listed twice in --heads") }
            if head.selection == .clsAndPatches && (train.clsInTokens || val.clsInTokens) {
                throw TrainingError("head \(name): these tokens already begin with the [CLS] (an open_clip timm-trunk tower's `forward_features`, as upstream "
                                    + "feeds them); upstream's NAME_all there projects every token into the CLIP space, which is not built here — use \(head.pooling)")
            }
            if head.selection != .patches && train.clsDim != val.clsDim {
                throw TrainingError("`cls` is \(train.clsDim) wide in \(train.description) but \(val.clsDim) in \(val.description)")
            }
            if head.selection == .clsAndPatches && train.clsDim != train.dim {
                throw TrainingError("cannot build \(name): the pooled `cls` is \(train.clsDim)-d (the backbone's projection) but the patch tokens are \(train.dim)-d, so they cannot be concatenated ; upstream projects CLIP's patch tokens into that width first: add --tokens projected (as linprobe does for these commands), or use ep, lp_gap or another pooling of the patches, or --cls token")
            }
            // Every setting of a head starts from the same initialisation (as DINOv2's grids do).
            for setting in settings {
                let c = setting.config
                var options = HeadOptions(dim: head.selection == .cls ? train.clsDim : train.dim, tokens: head.tokens(patches: train.patches), queries: c.queries,
                                          heads: c.numHeads, classes: classes)
                options.dOut = c.epDOut
                options.abmilp = c.abmilp
                let layout = try headFactory(head, options, classes)
                let fingerprint = RunFingerprint(c, classes: classes, trainSamples: train.samples, tokens: train.patches, dim: train.dim)
                heads.append(try HeadRun(head: head, setting: setting.name, config: c, fingerprint: fingerprint, layout: layout, gpu: gpu,
                                         seed: Trainer.headSeed(config.seed, name)))
            }
        }
        if let scope = config.finetune { try attachBackbone(scope, gpu: gpu) }
        // Parameters, moments and gradients of every probe stay on the device; activations of one
        // probe's step at a time. Refuse a grid whose state cannot fit, before anything runs.
        let budget = ctx.device.memory.budget
        let perProbe = heads.map(\.persistentBytes)
        let total = perProbe.reduce(0, +)
        if settings.count > 1 && total > budget / 2 {
            var fit = 0, used = 0
            for b in perProbe where used + b <= budget / 2 { used += b; fit += 1 }
            throw TrainingError("the sweep of \(heads.count) probes needs \(total >> 20) MiB of parameters, optimiser moments and gradients on \(ctx.device.name), more than half its \(budget >> 20) MiB budget; at most \(fit) of these probes fit — shorten the lists of --blr/--lr/--weight-decay/--ep-queries or --heads")
        }
    }

    func directory(_ h: HeadRun) -> URL { output.appendingPathComponent(h.name) }

    /// What a new run would replace under the output: each head with a saved training state, the
    /// epochs it completed and how its settings differ from this run's (empty: the same).
    public func existingRuns() -> [(head: String, epochs: Int, differences: [String])] {
        heads.compactMap { h in
            let path = directory(h).appendingPathComponent("checkpoint-last.state.safetensors").path
            guard FileManager.default.fileExists(atPath: path) else { return nil }
            guard let f = try? SafeTensorsFile(path: path), let meta = try? TrainingStateMeta.read(f, head: h.name) else {
                return (h.name, 0, ["its checkpoint \(path) is unreadable"])
            }
            return (h.name, meta.epoch + 1, h.fingerprint.differences(from: meta.fingerprint))
        }
    }

    /// `--overwrite`: the heads' folders, the summary and the report of an earlier run, removed.
    public func removeEarlierRun() throws {
        let fm = FileManager.default
        for h in heads where fm.fileExists(atPath: directory(h).path) { try fm.removeItem(at: directory(h)) }
        for name in ["summary.json", "report"] where fm.fileExists(atPath: output.appendingPathComponent(name).path) {
            try fm.removeItem(at: output.appendingPathComponent(name))
        }
    }

    /// Fine-tuning: the backbone's trained part joins the one head (upstream fine-tunes one model
    /// per run), fed by batches that stop at the last frozen block.
    func attachBackbone(_ scope: FineTuneScope, gpu: GPUBackend) throws {
        guard let tf = train as? BackboneFeatures, let vf = val as? BackboneFeatures else {
            throw TrainingError("--finetune trains the backbone on images: give --model, --weights and --data (not token files, nor --cache-tokens)")
        }
        guard heads.count == 1, let h = heads.first else {
            throw TrainingError("--finetune trains one head per run, as upstream's --finetuning does (the backbone is trained with it): give one --heads and no sweep lists (\(heads.count) probes asked: \(heads.map(\.name).joined(separator: ", ")))")
        }
        let c = tf.vit.config
        guard tf.tap == .norm || tf.tap == .block(c.depth - 1) else {
            throw TrainingError("--finetune trains up to the last block; the heads read \(tf.tap), which the trained blocks would not reach: use --blocks -1 or norm")
        }
        if h.head.selection != .patches && tf.usesPooled {
            throw TrainingError("--finetune with \(h.name): the [CLS] features here are the backbone's pooled head (\(tf.vit.pooledHead!.rawValue)), which is not fine-tuned; read the [CLS] token (--cls token) or use a head of the patches")
        }
        let weights = tf.vit.weights
        let trained = try TrainableViT(weights: weights, scope: scope, appliesNorm: tf.tap == .norm, backend: gpu)
        trained.checkpointBlocks = config.gradCheckpoint
        h.backbone = trained
        h.backboneWeights = weights
        tf.fineTune = scope; vf.fineTune = scope
        let k = c.depth - scope.firstBlock(depth: c.depth)
        let what = scope == .all ? "every parameter of the backbone"
            : (k == 1 ? "the last block" : "the last \(k) blocks") + (trained.appliesNorm && c.finalNorm ? " and the final norm" : "")
        log("fine-tuning \(what) (\(trained.parameterCount) parameters in \(trained.specs.count) tensors) with \(h.name)\(config.gradCheckpoint ? ", each block's activations recomputed in the backward (--grad-checkpoint)" : ""); the backbone is saved as \(h.name)/backbone-last.safetensors (timm's names)")
    }

    // MARK: Resume

    /// Restores every head from `output/<head>/checkpoint-last.state.safetensors`. Each head
    /// continues after its own last completed epoch (a run killed between two heads' checkpoints
    /// leaves them one epoch apart). Refuses checkpoints of other settings, heads or damaged files.
    /// Restores every head from its last completed epoch under `output`. Heads without one start
    /// from their initialisation (a run stopped before its first epoch ended, e.g. while its token
    /// cache was extracted); `flag` names the option that asked, for messages. With `evalOnly`
    /// every head needs a saved epoch.
    /// `initialized`: heads whose weights come from elsewhere (`--init-head`), which evaluation
    /// alone does not need saved under the output.
    public func resume(flag: String = "--resume", evalOnly: Bool = false, initialized: Set<String> = []) throws {
        var fresh: [String] = []
        for h in heads {
            if !(try h.restore(from: directory(h), history: try readHistory(h))) { fresh.append(h.name) }
        }
        if evalOnly {
            // Evaluation needs the head's weights only: its checkpoint (ours, or a head saved by
            // upstream's code under upstream's state_dict names) when there is no training state.
            for h in heads where fresh.contains(h.name) && !initialized.contains(h.name) {
                let weights = directory(h).appendingPathComponent("checkpoint-last.safetensors").path
                guard FileManager.default.fileExists(atPath: weights) else {
                    throw TrainingError("\(flag): \(weights) does not exist (no saved \(h.name) head); train the head first, or put its weights there (a safetensors file with upstream's state_dict names)")
                }
                try h.loadWeights(from: weights, flag: flag)
                log("\(h.name): weights from \(weights) (no training state: evaluation only)")
            }
            fresh = []
        }
        resumed = true
        if fresh.count == heads.count {
            log("\(flag): no epoch completed yet under \(output.path); training starts at epoch 1")
        } else {
            let next = heads.map(\.nextEpoch).min() ?? 0
            if fresh.isEmpty && heads.allSatisfy({ $0.nextEpoch == next }) {
                log("resuming after epoch \(next) of \(config.epochs)")
            } else {
                log("resuming: " + heads.map { $0.nextEpoch == 0 ? "\($0.name) from epoch 1 (no completed epoch)" : "\($0.name) after epoch \($0.nextEpoch)" }.joined(separator: ", "))
            }
        }
    }

    /// `--init-head`: the named head (every probe of it, in a sweep or layer-wise run) starts from
    /// a checkpoint's weights; refused for a head resumed from its training state.
    public func initialize(head name: String, from path: String) throws {
        let probes = heads.filter { $0.head.name == name || $0.name == name }
        guard !probes.isEmpty else { throw TrainingError("--init-head \(name)=\(path): no head \(name) in --heads (\(Set(heads.map(\.head.name)).sorted().joined(separator: ", ")))") }
        for h in probes {
            guard h.nextEpoch == 0 else { throw TrainingError("--init-head \(name): \(h.name) resumes after epoch \(h.nextEpoch) from its training state; give one or the other") }
            try h.loadWeights(from: path, flag: "--init-head \(name)")
            h.nextEpoch = 0
            log("\(h.name): starts from \(path)")
        }
    }

    /// Whether `output` holds anything a run left to continue: a training state, a summary, or
    /// (runs over images) a token cache begun.
    public static func hasProgress(_ output: URL) -> Bool {
        let fm = FileManager.default
        if fm.fileExists(atPath: output.appendingPathComponent("summary.json").path) { return true }
        for split in ["train", "val"] where fm.fileExists(atPath: output.appendingPathComponent("tokens/\(split)/extract.json").path) { return true }
        let entries = (try? fm.contentsOfDirectory(atPath: output.path)) ?? []
        return entries.contains { fm.fileExists(atPath: output.appendingPathComponent($0).appendingPathComponent("checkpoint-last.state.safetensors").path) }
    }

    func readHistory(_ h: HeadRun) throws -> [EpochMetrics] {
        let url = directory(h).appendingPathComponent("metrics.jsonl")
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { return [] }
        return EpochMetrics.lines(text)
    }

    /// Records an epoch: metrics line, best, early stopping, checkpoints (each atomic; the
    /// training state last, so a kill anywhere leaves the previous epoch's state to resume from).
    func finishEpoch(_ h: HeadRun, _ m: EpochMetrics) throws {
        h.history = h.history.filter { $0.epoch < m.epoch } + [m]
        if m.val_acc1 > (h.best?.acc1 ?? -.infinity) { h.best = BestEpoch(acc1: m.val_acc1, acc5: m.val_acc5, epoch: m.epoch) }
        if let es = config.earlyStop, h.earlyStop.record(acc1: m.val_acc1, epoch: m.epoch, rule: es) {
            h.stopReason = "early stop after epoch \(m.epoch + 1): no val acc@1 gain above \(es.minDelta) points for \(h.earlyStop.stale) epochs"
        }
        h.nextEpoch = m.epoch + 1
        guard writes else { return }
        if let tb = tensorBoard {
            let tag = "test_v1_\(h.name)"
            for (name, value) in [("train_acc1", m.train_acc1), ("train_loss", m.train_loss), ("test_acc1", m.val_acc1),
                                  ("test_acc5", m.val_acc5), ("test_loss", m.val_loss)] {
                try tb.scalar("\(tag)/\(name)", value, step: m.epoch)
            }
            // The curves so far as an image (train/val loss, val acc@1), as curves.svg draws them.
            let curves = TrainingCurves.raster(history: h.history)
            try tb.image("\(tag)/curves", encoded: try ImageEncoder.png(curves), width: curves.width, height: curves.height, step: m.epoch)
            try tb.flush()
        }
        let dir = directory(h)
        // Metrics first: lines beyond the training state's epoch are dropped on resume.
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let lines = try h.history.map { String(decoding: try encoder.encode($0), as: UTF8.self) + "\n" }.joined()
        try lines.write(to: dir.appendingPathComponent("metrics.jsonl"), atomically: true, encoding: .utf8)
        KillPoint.reached(.metrics, head: h.name, epoch: m.epoch)
        let meta = TrainingStateMeta(head: h.name, epoch: m.epoch, best: h.best, earlyStop: h.earlyStop, stopped: h.stopReason,
                                     optimizerSteps: h.optimizerSteps, fingerprint: h.fingerprint, lossScaler: h.lossScaler)
        try h.saveCheckpoints(in: dir, meta: meta)
        try TrainingCurves.svg(title: "\(h.name): \(classes) classes, D = \(train.dim)", history: h.history)
            .write(to: dir.appendingPathComponent("curves.svg"), atomically: true, encoding: .utf8)
        let b = h.best!
        log("\(h.name) epoch \(m.epoch + 1)/\(config.epochs): train loss \(fmt(m.train_loss)) acc@1 \(fmt(m.train_acc1))%, val loss \(fmt(m.val_loss)) acc@1 \(fmt(m.val_acc1))% acc@5 \(fmt(m.val_acc5))% (best \(fmt(b.acc1))% @\(b.epoch + 1))"
            + (h.stopReason.map { " — \($0)" } ?? ""))
    }

    /// Loss, acc@1 and acc@5 (percent) of each head on the whole validation split, in eval mode,
    /// from one pass over it (each batch produced once for all heads); in the order of `hs`.
    public func evaluate(_ hs: [HeadRun]) throws -> [Evaluation] {
        guard !hs.isEmpty else { return [] }
        var sums = [EvaluationTally](repeating: EvaluationTally(), count: hs.count)
        var n = 0
        // Data-parallel: each process evaluates its contiguous share of the split.
        let share = (val.samples + group.size - 1) / group.size
        let lo = min(val.samples, group.rank * share), hi = min(val.samples, lo + share)
        let stream = val.batches(stride(from: lo, to: hi, by: config.batchSize).map { Array($0..<min($0 + config.batchSize, hi)) }, epoch: 0)
        while var batch = try stream.next() {
            let pending = try hs.map { try $0.record(&batch, train: false, gradScale: 1, applyStep: nil) }
            for (i, p) in pending.enumerated() { sums[i].add(try p.read(ctx)) }
            n += batch.size
        }
        if group.size > 1 {
            var v = sums.flatMap { [$0.loss, Double($0.top1), Double($0.top5)] } + [Double(n)]
            try group.allReduceSum(&v)
            sums = hs.indices.map { EvaluationTally(loss: v[3 * $0], top1: Int(v[3 * $0 + 1]), top5: Int(v[3 * $0 + 2])) }
            n = Int(v[v.count - 1])
        }
        guard n > 0 else { throw TrainingError("\(val.description): no validation sample could be read") }
        return sums.map { Evaluation(loss: $0.loss / Double(n), acc1: 100 * Double($0.top1) / Double(n), acc5: 100 * Double($0.top5) / Double(n)) }
    }

    func writeSummary() throws -> [String: HeadSummary] {
        var summaries: [String: HeadSummary] = [:]
        let previous = (try? JSONDecoder().decode(RunSummary.self, from: Data(contentsOf: output.appendingPathComponent("summary.json"))))?.heads ?? [:]
        for h in heads {
            let b = h.best ?? BestEpoch(acc1: 0, acc5: 0, epoch: -1)
            let rate = h.timedSeconds > 0 ? Double(h.timedImages) / h.timedSeconds : previous[h.name]?.train_images_per_s
            summaries[h.name] = HeadSummary(best_acc1: b.acc1, best_epoch: b.epoch + 1, acc5: b.acc5, params: h.layout.totalParameterCount,
                                            epochs_run: h.history.count, status: h.stopReason ?? "done", head: h.head.name, setting: h.setting,
                                            peak_lr: h.config.peakLR, weight_decay: h.config.optimizer.weightDecay,
                                            ep_queries: h.head.pooling == "ep" ? h.config.queries : nil,
                                            macs_per_image: h.layout.forwardMACs, train_images_per_s: rate, tap: config.tap)
        }
        // Layer-wise probing: each tap's trainer writes its probes; the others' stay.
        if config.tap != nil { for (k, v) in previous where summaries[k] == nil && v.tap != nil { summaries[k] = v } }
        var best: [String: String]?
        if heads.contains(where: { !$0.setting.isEmpty }) || config.tap != nil {
            best = [:]
            for name in Set(summaries.values.compactMap(\.head)) {
                let probes = summaries.filter { $0.value.head == name }
                if let top = probes.max(by: { ($0.value.best_acc1, $1.key) < ($1.value.best_acc1, $0.key) }) { best![name] = top.key }
            }
        }
        guard writes else { return summaries }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(RunSummary(heads: summaries, best: best, device: ctx.device.name, unreadable: unreadableReports?(),
                                      peakDeviceMemoryBytes: ctx.device.memory.peakUsedBytes, deviceMemoryBudgetBytes: ctx.device.memory.budget))
            .write(to: output.appendingPathComponent("summary.json"), options: .atomic)
        return summaries
    }
}

extension Trainer {
    /// Sums, over the group and in one call, each probe's flag "its loss was not finite on some
    /// process" and (when `gradients`) every probe's accumulated gradients, which are written back
    /// in place; returns the flags as "finite everywhere".
    func allReduceFlagsAndGradients(_ probes: [HeadRun], finite: [Bool], gradients: Bool) throws -> [Bool] {
        var values = finite.map { $0 ? 0.0 : 1.0 }
        var tensors: [Tensor] = []
        if gradients {
            for h in probes {
                for name in h.accumulated.keys.sorted() { tensors.append(h.accumulated[name]!) }
            }
            for t in tensors { values += try ctx.read(t).map(Double.init) }
        }
        try group.allReduceSum(&values)
        var at = probes.count
        for t in tensors {
            let sums = values[at..<(at + t.count)].map { Float($0) }
            at += t.count
            try sums.withUnsafeBytes { try ctx.device.upload($0, to: t.buffer, offset: t.offset * 4) }
        }
        return values.prefix(probes.count).map { $0 == 0 }
    }
}

func fmt(_ x: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", x) }
