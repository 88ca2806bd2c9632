import Foundation
import ProbeAutodiff
import ProbeBackbones
import ProbeHeads
import ProbeKernels
import SafeTensors
import VulkanCompute

/// One batch on the device, shared by every head.
public struct DeviceBatch {
    public let tokens: Tensor
    public let cls: Tensor?
    public let labels: Tensor
    public let size: Int
    var all: Tensor?
    /// Fine-tuning: what the trained part of the backbone reads (the frozen part's output, or the
    /// images' patch rows) and the patch grid; `tokens` then holds the same tensor and no head
    /// reads it (the head reads the trained part's output).
    public var backboneInput: Tensor?
    public var grid: [Int] = []
    public init(tokens: Tensor, cls: Tensor?, labels: Tensor, size: Int) {
        self.tokens = tokens; self.cls = cls; self.labels = labels; self.size = size
    }
}

/// Results of one head on one batch.
public struct BatchResult {
    public var lossSum: Double
    public var top1: Int
    public var top5: Int
    public var count: Int
    public var finite: Bool
}

/// A batch's losses and ranks still on the device.
struct PendingResult {
    let losses: Tensor
    let ranks: Tensor
    let count: Int
    func read(_ ctx: KernelContext) throws -> BatchResult {
        let l = try ctx.read(losses), r = try ctx.readInt32(ranks)
        let sum = l.reduce(0) { $0 + Double($1) }
        return BatchResult(lossSum: sum, top1: r.filter { $0 >= 0 && $0 < 1 }.count, top5: r.filter { $0 >= 0 && $0 < 5 }.count,
                           count: count, finite: sum.isFinite)
    }
}

/// One head in a run: its tensors, optimiser state and accumulated gradients, and its record
/// (metrics history, best epoch, early-stopping counters, status, the next epoch it trains).
public final class HeadRun {
    public let head: HeadName
    /// The head's name, and its setting where several are swept (`ep/blr0.1-wd0`).
    public let name: String
    /// The sweep setting ("" without a sweep) and the configuration this probe trains with.
    public let setting: String
    public let config: TrainingConfig
    public let schedule: LearningRateSchedule
    let fingerprint: RunFingerprint
    public let layout: ProbeHeadLayout
    public let state: ProbeHeadState<GPUBackend>
    let gpu: GPUBackend
    var ctx: KernelContext { gpu.ctx }
    let optimizer: OptimizerConfig
    var moment1: [String: Tensor] = [:]
    var moment2: [String: Tensor] = [:]
    var accumulated: [String: Tensor] = [:]
    public internal(set) var optimizerSteps = 0
    /// In fp16 (--amp): the dynamic loss scale, and the optimiser steps skipped for non-finite gradients.
    var lossScaler: LossScaler?
    var skippedSteps = 0
    /// Why the head stopped early (non-finite loss, early stopping), if it did.
    public internal(set) var stopReason: String?
    public internal(set) var history: [EpochMetrics] = []
    public internal(set) var best: BestEpoch?
    var earlyStop = EarlyStopState()
    /// The first epoch this head has not completed (after a resume, heads may differ by one).
    var nextEpoch = 0
    /// Host time of this probe's training steps in this process (for its images/s).
    var timedSteps = 0, timedImages = 0
    var timedSeconds = 0.0
    /// The learning rate of its schedule now (set at the first micro-batch of each group), and
    /// the epoch's training sums so far.
    var lr = 0.0
    var tally = EpochTally()
    /// The GPU-timestamp region around its commands in a step.
    var timingRegion: String { "probe:" + name }
    /// Fine-tuning: the trained part of the backbone, trained with the head under the same
    /// optimiser (its tensors are `backbone.<timm name>` in the gradients, moments and training
    /// state), and the whole model it came from (saved with the trained tensors replaced).
    public internal(set) var backbone: TrainableViT<GPUBackend>?
    var backboneWeights: ViTWeights?

    init(head: HeadName, setting: String, config: TrainingConfig, fingerprint: RunFingerprint, layout: ProbeHeadLayout, gpu: GPUBackend, seed: UInt64) throws {
        self.head = head; self.setting = setting; self.config = config; self.fingerprint = fingerprint
        name = (setting.isEmpty ? head.name : head.name + "/" + setting) + (config.tap.map { "/" + $0 } ?? "")
        schedule = LearningRateSchedule(peak: config.peakLR, minLR: config.minLR, warmupEpochs: config.warmupEpochs, epochs: Double(config.epochs))
        self.layout = layout; self.gpu = gpu; self.optimizer = config.optimizer
        state = try ProbeHeadState(layout: layout, backend: gpu, seed: seed)
        if config.precision.usesLossScaling { lossScaler = LossScaler() }
    }

    func input(_ b: inout DeviceBatch) throws -> Tensor {
        switch head.selection {
        case .patches: return b.tokens
        case .cls:
            guard let c = b.cls else { throw TrainingError("\(name) needs the [CLS] token: the token file has no `cls` tensor (lp_gap reads the mean of the patches)") }
            return c
        case .clsAndPatches:
            if let a = b.all { return a }
            guard let c = b.cls else { throw TrainingError("\(name) needs the [CLS] token: the token file has no `cls` tensor") }
            let a = try ctx.concat([try c.reshaped([b.size, 1, c.shape[1]]), b.tokens], axis: 1)
            b.all = a
            return a
        }
    }

    /// Forward, loss and (when `train`) backward of one (micro-)batch, recorded without waiting;
    /// gradients are scaled by `gradScale` and accumulated until `applyStep` runs the optimiser
    /// with `lr`. The losses and ranks are read later (`PendingResult.read`), once for all heads
    /// of a step: no host sync between heads. A non-finite loss found then stops the head; its
    /// parameters may already hold that step's update, which its last good checkpoint predates.
    func record(_ batch: inout DeviceBatch, train: Bool, gradScale: Float, applyStep lr: Double?) throws -> PendingResult {
        let g = Graph(gpu, training: train)
        var tokens: Variable<GPUBackend>
        var backboneVars: [(String, Variable<GPUBackend>)] = []
        if let backbone {
            guard let input = batch.backboneInput, batch.grid.count == 2 else { throw TrainingError("\(name): fine-tuning needs batches of images through the backbone") }
            let (out, vars) = try backbone.forward(g, input: input, gridH: batch.grid[0], gridW: batch.grid[1], train: train)
            tokens = try headInput(g, out)
            backboneVars = vars.map { ("backbone." + $0.0, $0.1) }
        } else {
            tokens = g.input(try input(&batch))
        }
        let (logits, _, _, headVars) = try state.forward(g, tokens: tokens)
        let trainable = headVars + backboneVars
        let scaled = train ? gradScale * Float(lossScaler?.scale ?? 1) : gradScale
        let ce = try ctx.crossEntropy(logits.value, labels: batch.labels, gradScale: scaled)
        if train {
            try g.backward(logits, grad: ce.dLogits)
            for (qualified, v) in trainable {
                guard let grad = v.grad else { continue }
                if let acc = accumulated[qualified] { accumulated[qualified] = try ctx.add(acc, grad) } else { accumulated[qualified] = try ctx.contiguous(grad) }
            }
            if let lr { try applyOptimizer(lr: lr) }
        }
        return PendingResult(losses: ce.losses, ranks: ce.ranks, count: batch.size)
    }

    /// The head's input from the fine-tuned backbone's tokens (B, T, D): the patches, [CLS], or
    /// [CLS] and the patches (registers left out), as a token file would hold them.
    func headInput(_ g: Graph<GPUBackend>, _ out: Variable<GPUBackend>) throws -> Variable<GPUBackend> {
        let s = g.shape(out), c = backbone!.config, prefix = c.prefixTokens
        // After the final norm, open_clip's timm-trunk towers keep the [CLS] among the tokens (as upstream reads them).
        let keepCLS = backbone!.appliesNorm && c.normTokensKeepCLS
        let patches = try g.slice(out, axis: 1, (keepCLS ? 0 : prefix)..<s[1])
        switch head.selection {
        case .patches: return patches
        case .cls: return try g.reshape(try g.slice(out, axis: 1, 0..<1), [s[0], s[2]])
        case .clsAndPatches: return c.regTokens == 0 ? out : try g.concat([try g.slice(out, axis: 1, 0..<1), patches], axis: 1)
        }
    }

    /// Every trained tensor: the head's by upstream name, the backbone's as `backbone.<name>`.
    var trainedTensors: [(qualified: String, shape: [Int], value: Tensor)] {
        state.trainable.compactMap { n, spec in state[n].map { (n, spec.shape, $0) } }
            + (backbone.map { b in b.specs.map { ("backbone." + $0.name, $0.shape, b.values[$0.name]!) } } ?? [])
    }

    /// `record` and read at once (one head alone).
    func run(_ batch: inout DeviceBatch, train: Bool, gradScale: Float, applyStep lr: Double?) throws -> BatchResult {
        try record(&batch, train: train, gradScale: gradScale, applyStep: lr).read(ctx)
    }

    func applyOptimizer(lr: Double) throws {
        if var scaler = lossScaler {
            // Unscale, then step only when every gradient is finite (one read per step).
            let names = accumulated.keys.sorted()
            let squares = try ctx.empty([max(names.count, 1)])
            for (i, name) in names.enumerated() {
                let g = accumulated[name]!
                _ = try ctx.unary(g, .none, alpha: Float(1 / scaler.scale), into: g)
                try ctx.sumOfSquares(g, into: squares, at: i)
            }
            let sums = names.isEmpty ? [] : try ctx.read(squares)
            let finite = sums.prefix(names.count).allSatisfy(\.isFinite)
            scaler.update(finite: finite)
            lossScaler = scaler
            guard finite else { accumulated = [:]; skippedSteps += 1; return }
        }
        optimizerSteps += 1
        // One rule over every trained tensor (upstream's build_optimizer: one parameter group; LARS
        // decays and trust-scales tensors of more than one axis, in PyTorch's shapes).
        for (qualified, shape, param) in trainedTensors {
            guard let grad = accumulated[qualified] else { continue }
            if optimizer.usesMomentum, moment1[qualified] == nil { moment1[qualified] = try gpu.zeros(shape) }
            if optimizer.usesSecondMoment, moment2[qualified] == nil { moment2[qualified] = try gpu.zeros(shape) }
            try ctx.optimizerStep(optimizer.step(lr: lr, rank: shape.count, count: optimizerSteps), param: param, grad: grad,
                                  state1: moment1[qualified], state2: moment2[qualified])
        }
        accumulated = [:]
    }

    /// Drops gradients of an unfinished accumulation group (upstream zeroes the gradients at the
    /// start of every epoch, so a partial group at an epoch's end never steps).
    func discardPartialGroup() { accumulated = [:] }

    // MARK: Checkpoints

    /// Writes the epoch's checkpoints from one download of every tensor: `checkpoint-best` (when
    /// this epoch is the best), `checkpoint-last`, then the training state `--resume` reads.
    func saveCheckpoints(in dir: URL, meta: TrainingStateMeta) throws {
        let snapshot = try state.snapshot()
        let moments = try (moment1.map { ("optimizer.m1." + $0.key, $0.value) } + moment2.map { ("optimizer.m2." + $0.key, $0.value) })
            .map { ($0.0, $0.1.shape, try ctx.read($0.1)) }
        let headMeta = state.headMetadata.merging(["epoch": "\(meta.epoch)"]) { a, _ in a }
        let backboneTensors = try backbone.map { b in try b.specs.map { ("backbone." + $0.name, $0.shape, try ctx.read(b.values[$0.name]!)) } } ?? []
        if let backbone, let base = backboneWeights {
            // The whole fine-tuned model in timm's names (timm's load_state_dict, vkprobe extract --weights).
            let model = try backbone.merged(into: base)
            let modelMeta = ["format": "pt", "vkprobe.finetune": backbone.scope.description, "epoch": "\(meta.epoch)", "head": name]
            if best?.epoch == meta.epoch { try model.write(to: dir.appendingPathComponent("backbone-best.safetensors").path, metadata: modelMeta) }
            try model.write(to: dir.appendingPathComponent("backbone-last.safetensors").path, metadata: modelMeta)
        }
        if best?.epoch == meta.epoch {
            try snapshot.write(to: dir.appendingPathComponent("checkpoint-best.safetensors").path, metadata: headMeta)
            KillPoint.reached(.best, head: name, epoch: meta.epoch)
        }
        try snapshot.write(to: dir.appendingPathComponent("checkpoint-last.safetensors").path, metadata: headMeta)
        KillPoint.reached(.last, head: name, epoch: meta.epoch)
        try snapshot.write(to: dir.appendingPathComponent("checkpoint-last.state.safetensors").path, metadata: meta.metadata, prefix: "head.") { w in
            for (key, shape, values) in moments + backboneTensors { w.add(key, values, shape: shape) }
            w.onTemporaryWritten = { KillPoint.reached(.stateTemp, head: self.name, epoch: meta.epoch) }
        }
        KillPoint.reached(.state, head: name, epoch: meta.epoch)
    }

    /// Persistent device bytes: parameters, optimiser moments, accumulated gradients.
    var persistentBytes: Int {
        (layout.totalParameterCount + (backbone?.parameterCount ?? 0)) * 4 * (2 + (optimizer.usesMomentum ? 1 : 0) + (optimizer.usesSecondMoment ? 1 : 0))
    }

    /// The head's weights alone from a checkpoint with upstream's `state_dict` names (the
    /// `checkpoint-last.safetensors` VulkanProbe writes, or a head saved by upstream's PyTorch code
    /// with `save_file(head.state_dict())`): for evaluation, no training state needed. Every
    /// tensor is checked against this head's options (missing, unexpected, mis-shaped listed).
    func loadWeights(from path: String, flag: String) throws {
        if backbone != nil {
            throw TrainingError("\(flag): \(name) fine-tunes its backbone, so it is evaluated from its training state (checkpoint-last.state.safetensors), which is not under the output")
        }
        let f: SafeTensorsFile
        do { f = try SafeTensorsFile(path: path) } catch { throw TrainingError("\(flag): \(path): \(error)") }
        let loaded: ProbeHeadState<GPUBackend>
        do { loaded = try ProbeHeadState(layout: layout, backend: gpu, file: f, prefix: "") } catch {
            throw TrainingError("\(flag): \(path) is not a \(name) head of these options (queries, width, classes, variant): \(error)")
        }
        state.parameters.values = loaded.parameters.values
        state.batchesTracked = loaded.batchesTracked
        if let e = f.metadata["epoch"].flatMap(Int.init) { nextEpoch = e + 1 }
    }

    /// Restores the head and its record from `checkpoint-last.state.safetensors` after checking it
    /// is this head's, intact, and written with the same settings: the training state of the last
    /// completed epoch, if there is one (false: none was saved, the head starts from its
    /// initialisation).
    func restore(from dir: URL, history allHistory: [EpochMetrics]) throws -> Bool {
        let path = dir.appendingPathComponent("checkpoint-last.state.safetensors").path
        guard FileManager.default.fileExists(atPath: path) else { return false }
        let f: SafeTensorsFile
        do { f = try SafeTensorsFile(path: path) } catch {
            throw TrainingError("cannot resume \(name): \(error) — the checkpoint is damaged; remove \(path) to start over (nothing was overwritten)")
        }
        let meta = try TrainingStateMeta.read(f, head: name)
        let differences = fingerprint.differences(from: meta.fingerprint)
        guard differences.isEmpty else {
            throw TrainingError("--resume: \(path) was written with other settings — \(differences.joined(separator: "; ")); use the same options or a new --output (nothing was overwritten)")
        }
        let loaded: ProbeHeadState<GPUBackend>
        do { loaded = try ProbeHeadState(layout: layout, backend: gpu, file: f, prefix: "head.") } catch {
            throw TrainingError("cannot resume \(name): \(error) (nothing was overwritten)")
        }
        state.parameters.values = loaded.parameters.values
        state.batchesTracked = loaded.batchesTracked
        if let backbone {
            var missing: [String] = []
            for (n, shape) in backbone.specs {
                guard let e = f.entries["backbone." + n], e.shape == shape else { missing.append("backbone.\(n) \(shape)"); continue }
                backbone.values[n] = try gpu.constant(try f.floats("backbone." + n), shape)
            }
            guard missing.isEmpty else {
                throw TrainingError("cannot resume \(name): \(path) lacks the fine-tuned backbone's tensors (\(missing.prefix(3).joined(separator: ", "))\(missing.count > 3 ? ", …" : "")) (nothing was overwritten)")
            }
        }
        moment1 = [:]; moment2 = [:]
        for key in f.names where key.hasPrefix("optimizer.") {
            let t = try gpu.constant(try f.floats(key), try f.entry(key).shape)
            if key.hasPrefix("optimizer.m1.") { moment1[String(key.dropFirst("optimizer.m1.".count))] = t }
            if key.hasPrefix("optimizer.m2.") { moment2[String(key.dropFirst("optimizer.m2.".count))] = t }
        }
        optimizerSteps = meta.optimizerSteps
        if lossScaler != nil { lossScaler = meta.lossScaler ?? LossScaler() }
        best = meta.best
        earlyStop = meta.earlyStop
        stopReason = meta.stopped
        history = allHistory.filter { $0.epoch <= meta.epoch }
        nextEpoch = meta.epoch + 1
        return true
    }
}
