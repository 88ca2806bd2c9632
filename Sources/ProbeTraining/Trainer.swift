import Foundation
import ProbeAutodiff
import ProbeHeads
import ProbeKernels
import VulkanCompute

/// Everything a training run is configured with (the `vkprobe train` options).
public struct TrainingConfig: Codable, Sendable {
    public var heads: [String]
    public var epochs = 90
    public var batchSize = 1024
    public var accumIter = 1
    public var optimizer = OptimizerConfig()
    public var blr = 0.1
    public var lr: Double?
    public var minLR = 0.0
    public var warmupEpochs = 10.0
    public var queries = 32
    public var numHeads = 16
    public var seed: UInt64 = 0
    public var shots: Int?
    public var labelFraction: Double?
    public var classes: Int?
    /// Early stopping: patience in epochs (nil: off), minimum improvement, epochs before it may stop.
    public var earlyStopPatience: Int?
    public var earlyStopMinDelta = 0.0
    public var earlyStopMinEpochs = 0
    public init(heads: [String]) { self.heads = heads }

    public var effectiveBatch: Int { batchSize * accumIter }
    public var peakLR: Double { lr ?? LearningRateSchedule.scaledLR(blr: blr, effectiveBatch: effectiveBatch) }
}

/// One epoch's line of `metrics.jsonl`.
public struct EpochMetrics: Codable, Sendable {
    public var epoch: Int
    public var lr: Double
    public var train_loss: Double
    public var train_acc1: Double
    public var val_loss: Double
    public var val_acc1: Double
    public var val_acc5: Double
    public var seconds: Double
}

/// Per-head outcome in `summary.json`.
public struct HeadSummary: Codable, Sendable {
    public var best_acc1: Double
    public var best_epoch: Int
    public var acc5: Double
    public var params: Int
    public var epochs_run: Int
    public var status: String
}

/// Trains several heads from one pass over the token features per step: each batch is read and
/// uploaded once and fed to every head; each head keeps its own parameters, optimiser state,
/// metrics and checkpoints under `output/<head>/`.
public final class Trainer {
    public let config: TrainingConfig
    public let ctx: KernelContext
    public let train: TokenDataset
    public let val: TokenDataset
    public let output: URL
    public let classes: Int
    public private(set) var heads: [HeadTrainer] = []
    public var log: (String) -> Void = { print($0) }
    public var progress: ((String) -> Void)?
    /// Called after every epoch (index from 0) once every head has been evaluated and checkpointed.
    public var onEpochEnd: ((Int) throws -> Void)?
    var history: [String: [EpochMetrics]] = [:]
    var best: [String: (acc1: Double, acc5: Double, epoch: Int)] = [:]
    var stalled: [String: Int] = [:]
    var startEpoch = 0

    public init(config: TrainingConfig, ctx: KernelContext, train: TokenDataset, val: TokenDataset, output: URL) throws {
        self.config = config; self.ctx = ctx; self.train = train; self.val = val; self.output = output
        guard train.tokens == val.tokens, train.dim == val.dim else {
            throw TrainingError("token shapes differ: \(train.path) has (N, D) = (\(train.tokens), \(train.dim)), \(val.path) has (\(val.tokens), \(val.dim))")
        }
        classes = config.classes ?? max(train.classCount, val.classCount)
        try train.validateLabels(classes: classes)
        try val.validateLabels(classes: classes)
        guard config.batchSize > 0, config.accumIter > 0, config.epochs > 0 else { throw TrainingError("batch size, --accum-iter and --epochs must be positive") }
        let gpu = GPUBackend(ctx)
        for (i, name) in config.heads.enumerated() {
            let selection = TokenSelection(head: name)
            let tokens = selection == .clsAndPatches ? train.tokens + 1 : (selection == .cls ? 1 : train.tokens)
            if selection != .patches && !(train.hasCLS && val.hasCLS) {
                throw TrainingError("head \(name) needs the [CLS] token, but \(train.hasCLS ? val.path : train.path) has no `cls` tensor")
            }
            let options = HeadOptions(dim: train.dim, tokens: tokens, queries: config.queries, heads: config.numHeads, classes: classes)
            let layout = ProbeHeadLayout(pooling: try Heads.pooling(name, options), classes: classes)
            heads.append(try HeadTrainer(name: name, layout: layout, gpu: gpu, optimizer: config.optimizer, seed: config.seed &+ UInt64(i) &* 1000))
        }
    }

    func directory(_ h: HeadTrainer) -> URL { output.appendingPathComponent(h.name) }
    var active: [HeadTrainer] { heads.filter { $0.stopReason == nil } }

    // MARK: Resume

    /// Restores every head from `output/<head>/checkpoint-last.state.safetensors`; training then
    /// continues after the last completed epoch. Checks the run's configuration matches.
    public func resume() throws {
        var epochs: Set<Int> = []
        for h in heads {
            let path = directory(h).appendingPathComponent("checkpoint-last.state.safetensors").path
            guard FileManager.default.fileExists(atPath: path) else {
                throw TrainingError("--resume: \(path) does not exist (no completed epoch for \(h.name)); run without --resume to start")
            }
            let meta = try h.loadState(from: path)
            if let fp = meta["config"], fp != configFingerprint {
                throw TrainingError("--resume: \(path) was written by a run with other settings (\(fp)); use the same options or a new --output")
            }
            guard let e = meta["epoch"].flatMap(Int.init) else { throw TrainingError("--resume: \(path) has no epoch; nothing was overwritten") }
            epochs.insert(e)
            best[h.name] = (Double(meta["best_acc1"] ?? "") ?? -1, Double(meta["best_acc5"] ?? "") ?? 0, Int(meta["best_epoch"] ?? "") ?? -1)
            stalled[h.name] = Int(meta["stalled"] ?? "0") ?? 0
            if let reason = meta["stopped"], !reason.isEmpty { h.stopReason = reason }
            history[h.name] = try readHistory(h).filter { $0.epoch <= e }
        }
        guard let e = epochs.max() else { return }
        startEpoch = e + 1
        log("resuming after epoch \(e + 1) of \(config.epochs)")
    }

    var configFingerprint: String {
        "heads=\(config.heads.joined(separator: ",")) batch=\(config.batchSize)x\(config.accumIter) opt=\(config.optimizer.kind.rawValue) lr=\(config.peakLR) epochs=\(config.epochs) warmup=\(config.warmupEpochs) seed=\(config.seed) shots=\(config.shots.map(String.init) ?? "-") fraction=\(config.labelFraction.map { "\($0)" } ?? "-") classes=\(classes)"
    }

    func readHistory(_ h: HeadTrainer) throws -> [EpochMetrics] {
        let url = directory(h).appendingPathComponent("metrics.jsonl")
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { try? JSONDecoder().decode(EpochMetrics.self, from: Data($0.utf8)) }
    }

    // MARK: Batches

    func upload(_ ds: TokenDataset, _ indices: [Int]) throws -> DeviceBatch {
        let tokens = try ctx.tensor(try ds.gatherTokens(indices), [indices.count, ds.tokens, ds.dim])
        let cls = ds.hasCLS ? try ctx.tensor(try ds.gatherCLS(indices), [indices.count, ds.dim]) : nil
        let labels = try ctx.tensor(indices.map { ds.labels[$0] }, [indices.count])
        return DeviceBatch(tokens: tokens, cls: cls, labels: labels, size: indices.count, all: nil)
    }

    // MARK: Loop

    public func run(evalOnly: Bool = false) throws -> [String: HeadSummary] {
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        for h in heads { try FileManager.default.createDirectory(at: directory(h), withIntermediateDirectories: true) }
        if evalOnly {
            for h in heads {
                let r = try evaluate(h)
                log("\(h.name): val loss \(fmt(r.loss)) acc@1 \(fmt(r.acc1))% acc@5 \(fmt(r.acc5))%")
                best[h.name] = (r.acc1, r.acc5, startEpoch - 1)
            }
            return try writeSummary()
        }
        let subset = SeededOrder.subset(labels: train.labels, shots: config.shots, fraction: config.labelFraction, seed: config.seed)
        let steps = subset.count / config.batchSize
        guard steps > 0 else {
            throw TrainingError("--batch-size \(config.batchSize) exceeds the \(subset.count) training samples (the last partial batch is dropped); use a smaller batch")
        }
        let schedule = LearningRateSchedule(peak: config.peakLR, minLR: config.minLR, warmupEpochs: config.warmupEpochs, epochs: Double(config.epochs))
        log("training \(heads.map(\.name).joined(separator: ", ")) on \(subset.count) samples (\(steps) steps/epoch, batch \(config.batchSize)×\(config.accumIter)), peak lr \(config.peakLR), \(ctx.device.name)")
        let runStart = Date()
        for epoch in startEpoch..<config.epochs where !active.isEmpty {
            let epochStart = Date()
            var order = subset
            var rng = SeededOrder(seed: config.seed, stream: UInt64(epoch))
            rng.shuffle(&order)
            var sums: [String: (loss: Double, top1: Int, n: Int)] = [:]
            var lr = schedule.lr(atEpoch: Double(epoch))
            for step in 0..<steps {
                if step % config.accumIter == 0 { lr = schedule.lr(atEpoch: Double(epoch) + Double(step) / Double(steps)) }
                let apply = (step + 1) % config.accumIter == 0 || step == steps - 1
                var batch = try upload(train, Array(order[(step * config.batchSize)..<((step + 1) * config.batchSize)]))
                for h in active {
                    let r = try h.run(&batch, train: true, gradScale: 1 / Float(config.effectiveBatch), applyStep: apply ? lr : nil)
                    if !r.finite {
                        h.stopReason = "non-finite loss at epoch \(epoch + 1), step \(step + 1); stopped (its last good checkpoint is kept)"
                        log("\(h.name): \(h.stopReason!)")
                        continue
                    }
                    var s = sums[h.name] ?? (0, 0, 0)
                    s.loss += r.lossSum; s.top1 += r.top1; s.n += r.count
                    sums[h.name] = s
                }
                if let progress {
                    let done = Double(epoch - startEpoch) + Double(step + 1) / Double(steps)
                    let eta = Date().timeIntervalSince(runStart) / max(done, 1e-9) * (Double(config.epochs - startEpoch) - done)
                    let losses = active.map { "\($0.name) \(fmt((sums[$0.name]?.loss ?? 0) / Double(max(sums[$0.name]?.n ?? 1, 1))))" }.joined(separator: ", ")
                    let rate = Double((step + 1) * config.batchSize) / Date().timeIntervalSince(epochStart)
                    progress("epoch \(epoch + 1)/\(config.epochs) step \(step + 1)/\(steps) lr \(fmt(lr, 4)) loss \(losses) \(Int(rate)) img/s ETA \(Int(eta))s")
                }
            }
            for h in active {
                let v = try evaluate(h)
                let s = sums[h.name] ?? (0, 0, 1)
                let m = EpochMetrics(epoch: epoch, lr: lr, train_loss: s.loss / Double(max(s.n, 1)), train_acc1: 100 * Double(s.top1) / Double(max(s.n, 1)),
                                     val_loss: v.loss, val_acc1: v.acc1, val_acc5: v.acc5, seconds: Date().timeIntervalSince(epochStart))
                try finishEpoch(h, m)
            }
            _ = try writeSummary()
            try onEpochEnd?(epoch)
        }
        return try writeSummary()
    }

    /// Records an epoch: metrics line, best tracking, early stopping, checkpoints (atomic).
    func finishEpoch(_ h: HeadTrainer, _ m: EpochMetrics) throws {
        history[h.name, default: []].append(m)
        let prev = best[h.name] ?? (-1, 0, -1)
        let improved = m.val_acc1 > prev.acc1 + config.earlyStopMinDelta || prev.epoch < 0
        if m.val_acc1 > prev.acc1 || prev.epoch < 0 { best[h.name] = (m.val_acc1, m.val_acc5, m.epoch) }
        stalled[h.name] = improved ? 0 : (stalled[h.name] ?? 0) + 1
        if let patience = config.earlyStopPatience, stalled[h.name]! >= patience, m.epoch + 1 >= config.earlyStopMinEpochs {
            h.stopReason = "early stop after epoch \(m.epoch + 1): no val acc@1 gain above \(config.earlyStopMinDelta) for \(patience) epochs"
        }
        let dir = directory(h)
        // Metrics first: a line beyond the last checkpoint is dropped on resume.
        let line = String(decoding: try JSONEncoder().encode(m), as: UTF8.self) + "\n"
        let metricsURL = dir.appendingPathComponent("metrics.jsonl")
        let existing = (try? String(contentsOf: metricsURL, encoding: .utf8)) ?? ""
        let kept = existing.split(separator: "\n").filter { l in
            (try? JSONDecoder().decode(EpochMetrics.self, from: Data(l.utf8)))?.epoch ?? Int.max < m.epoch
        }.map { $0 + "\n" }.joined()
        try (kept + line).write(to: metricsURL, atomically: true, encoding: .utf8)
        let b = best[h.name]!
        let meta = ["epoch": "\(m.epoch)", "best_acc1": "\(b.acc1)", "best_acc5": "\(b.acc5)", "best_epoch": "\(b.epoch)",
                    "stalled": "\(stalled[h.name]!)", "stopped": h.stopReason ?? "", "config": configFingerprint]
        if b.epoch == m.epoch { try h.state.save(to: dir.appendingPathComponent("checkpoint-best.safetensors").path, metadata: meta) }
        try h.state.save(to: dir.appendingPathComponent("checkpoint-last.safetensors").path, metadata: meta)
        try h.saveState(to: dir.appendingPathComponent("checkpoint-last.state.safetensors").path, metadata: meta)
        try writeCurves(h)
        log("\(h.name) epoch \(m.epoch + 1)/\(config.epochs): train loss \(fmt(m.train_loss)) acc@1 \(fmt(m.train_acc1))%, val loss \(fmt(m.val_loss)) acc@1 \(fmt(m.val_acc1))% acc@5 \(fmt(m.val_acc5))% (best \(fmt(b.acc1))% @\(b.epoch + 1))"
            + (h.stopReason.map { " — \($0)" } ?? ""))
    }

    /// Loss, acc@1 and acc@5 (percent) on the whole validation split, in eval mode.
    public func evaluate(_ h: HeadTrainer) throws -> (loss: Double, acc1: Double, acc5: Double) {
        var loss = 0.0, top1 = 0, top5 = 0
        for start in stride(from: 0, to: val.samples, by: config.batchSize) {
            var batch = try upload(val, Array(start..<min(start + config.batchSize, val.samples)))
            let r = try h.run(&batch, train: false, gradScale: 1, applyStep: nil)
            loss += r.lossSum; top1 += r.top1; top5 += r.top5
        }
        let n = Double(val.samples)
        return (loss / n, 100 * Double(top1) / n, 100 * Double(top5) / n)
    }

    func writeSummary() throws -> [String: HeadSummary] {
        var summaries: [String: HeadSummary] = [:]
        for h in heads {
            let b = best[h.name] ?? (0, 0, -1)
            summaries[h.name] = HeadSummary(best_acc1: b.acc1, best_epoch: b.epoch, acc5: b.acc5, params: h.layout.totalParameterCount,
                                            epochs_run: history[h.name]?.count ?? 0, status: h.stopReason ?? "done")
        }
        struct Summary: Encodable { let heads: [String: HeadSummary] }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(Summary(heads: summaries)).write(to: output.appendingPathComponent("summary.json"), options: .atomic)
        return summaries
    }

    func writeCurves(_ h: HeadTrainer) throws {
        let svg = TrainingCurves.svg(title: "\(h.name): \(classes) classes, D = \(train.dim)", history: history[h.name] ?? [])
        try svg.write(to: directory(h).appendingPathComponent("curves.svg"), atomically: true, encoding: .utf8)
    }
}

func fmt(_ x: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", x) }
