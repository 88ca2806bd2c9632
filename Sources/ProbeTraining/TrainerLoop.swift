import Foundation
import Logging
import ProbeKernels

/// A head's loss and ranks summed over an epoch's training batches.
struct EpochTally {
    var loss = 0.0, top1 = 0, count = 0
    mutating func add(_ r: BatchResult) { loss += r.lossSum; top1 += r.top1; count += r.count }
    var meanLoss: Double { loss / Double(max(count, 1)) }
    var acc1: Double { 100 * Double(top1) / Double(max(count, 1)) }
}

/// A head's sums over the validation split.
struct EvaluationTally {
    var loss = 0.0, top1 = 0, top5 = 0
    mutating func add(_ r: BatchResult) { loss += r.lossSum; top1 += r.top1; top5 += r.top5 }
}

/// A head's validation loss and accuracies (percent).
public struct Evaluation: Sendable, Equatable {
    public var loss: Double, acc1: Double, acc5: Double
}

/// The samples an epoch trains on: the (low-shot) subset, shuffled per epoch, or the order the
/// caller gives; `steps` batches, the last partial one dropped.
struct EpochPlan {
    let steps: Int
    let samples: Int
    let order: (Int) -> [Int]
}

/// `--profile N`: the per-op table of N training steps of the first epoch run, from its second
/// step (the first pays for pipeline creation).
struct StepProfiler {
    let steps: Int, firstStep: Int, lastStep: Int
    private var start: Date?
    init(profileSteps: Int, epochSteps: Int) {
        steps = profileSteps
        firstStep = min(1, epochSteps - 1)
        lastStep = min(firstStep + profileSteps, epochSteps) - 1
    }

    mutating func begin(_ ctx: KernelContext, step: Int) throws {
        guard steps > 0, step == firstStep else { return }
        try ctx.finish()
        ctx.stream.resetProfile()
        ctx.stream.profiling = true
        start = Date()
    }

    /// The report once the last profiled step ran (nil before and after).
    mutating func end(_ ctx: KernelContext, step: Int) throws -> ProfileReport? {
        guard let s = start, step == lastStep else { return nil }
        try ctx.finish()
        ctx.stream.profiling = false
        let report = ProfileReport(ctx.stream.profile, steps: step + 1 - firstStep, wallSeconds: Date().timeIntervalSince(s), device: ctx.device.name)
        ctx.stream.resetProfile()
        start = nil
        return report
    }
}

extension Trainer {
    /// Trains (or with `evalOnly`, evaluates the heads restored by `resume()`), writing metrics,
    /// checkpoints, curves and `summary.json`; returns the summary.
    public func run(evalOnly: Bool = false) throws -> [String: HeadSummary] {
        // The plan's refusals (batch against samples, group size) come before any folder is made.
        let plan = evalOnly ? nil : try epochPlan()
        let made = try makeFolders()
        do {
            if evalOnly { return try evaluateSaved() }
            return try trainEpochs(plan!)
        } catch {
            // A run that failed before writing anything leaves no empty head folders behind.
            let fm = FileManager.default
            for dir in made.reversed() where ((try? fm.contentsOfDirectory(atPath: dir.path)) ?? ["?"]).isEmpty { try? fm.removeItem(at: dir) }
            throw error
        }
    }

    /// The output folder and the heads' folders; returns those this call created.
    func makeFolders() throws -> [URL] {
        var made: [URL] = []
        for dir in [output] + heads.map(directory) where !FileManager.default.fileExists(atPath: dir.path) {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            made.append(dir)
        }
        return made
    }

    func trainEpochs(_ plan: EpochPlan) throws -> [String: HeadSummary] {
        logStart(plan)
        let runStart = Date()
        let firstEpoch = heads.map(\.nextEpoch).min() ?? 0
        var profiler = StepProfiler(profileSteps: profileSteps, epochSteps: plan.steps)   // the first epoch run only
        for epoch in firstEpoch..<config.epochs {
            let active = heads.filter { $0.stopReason == nil && $0.nextEpoch <= epoch }
            if active.isEmpty { if heads.allSatisfy({ $0.stopReason != nil }) { break } else { continue } }
            let epochStart = Date()
            defer { profiler = StepProfiler(profileSteps: 0, epochSteps: plan.steps) }
            try trainEpoch(epoch, active, plan, profiler: &profiler) { step in
                // The progress line: each probe's mean loss so far, images/s, the run's ETA.
                guard let progress = self.progress else { return }
                let done = Double(epoch - firstEpoch) + Double(step + 1) / Double(plan.steps)
                let eta = Date().timeIntervalSince(runStart) / max(done, 1e-9) * (Double(self.config.epochs - firstEpoch) - done)
                let losses = active.map { "\($0.name) \(fmt($0.tally.meanLoss))" }.joined(separator: ", ")
                let rate = Double((step + 1) * self.config.batchSize) / Date().timeIntervalSince(epochStart)
                progress("epoch \(epoch + 1)/\(self.config.epochs) step \(step + 1)/\(plan.steps) lr \(fmt(self.heads[0].lr, 4)) loss \(losses) \(Int(rate)) img/s ETA \(Int(eta))s")
            }
            let survivors = active.filter { $0.stopReason == nil }   // diverged this epoch: its last good checkpoint stays
            for (h, v) in zip(survivors, try evaluate(survivors)) {
                try finishEpoch(h, EpochMetrics(epoch: epoch, lr: h.lr, train_loss: h.tally.meanLoss, train_acc1: h.tally.acc1,
                                                val_loss: v.loss, val_acc1: v.acc1, val_acc5: v.acc5, seconds: Date().timeIntervalSince(epochStart)))
            }
            _ = try writeSummary()
            KillPoint.reached(.summary, head: "*", epoch: epoch)
            try onEpochEnd?(epoch)
        }
        return try writeSummary()
    }

    /// `--eval-only`: each restored head on the validation split.
    func evaluateSaved() throws -> [String: HeadSummary] {
        guard resumed else {
            throw TrainingError("--eval-only evaluates the heads saved under \(output.path); resume them first (vkprobe train --resume --eval-only), or train them")
        }
        for (h, r) in zip(heads, try evaluate(heads)) {
            log("\(h.name): val loss \(fmt(r.loss)) acc@1 \(fmt(r.acc1))% acc@5 \(fmt(r.acc5))% (after epoch \(h.nextEpoch))")
            // A head without a training record (weights only) reports what was measured now.
            if h.best == nil { h.best = BestEpoch(acc1: r.acc1, acc5: r.acc5, epoch: h.nextEpoch - 1) }
        }
        return try writeSummary()
    }

    /// The epochs' sample order. With cached views the subset and shuffle are over images, and
    /// epoch e reads view e mod K.
    func epochPlan() throws -> EpochPlan {
        let images = train.samples / train.views
        let subset = SeededOrder.subset(labels: Array(train.labels.prefix(images)), shots: config.shots, fraction: config.labelFraction, seed: config.seed)
        let (seed, views) = (config.seed, train.views)
        let order: (Int) -> [Int] = sampleOrder ?? { epoch in
            var o = subset
            var rng = SeededOrder(seed: seed, stream: UInt64(epoch))
            rng.shuffle(&o)
            return o.map { $0 + images * (epoch % views) }
        }
        let samples = sampleOrder.map { $0(0).count } ?? subset.count
        guard config.batchSize % group.size == 0 else {
            throw TrainingError("the global batch \(config.batchSize) (--global-batch-size) does not split evenly over \(group.size) processes; use a multiple of \(group.size), or --batch-size per process")
        }
        guard samples / config.batchSize > 0 else {
            throw TrainingError("--batch-size \(config.batchSize) exceeds the \(subset.count) training samples (the last partial batch is dropped); use a smaller batch")
        }
        return EpochPlan(steps: samples / config.batchSize, samples: samples, order: order)
    }

    func logStart(_ plan: EpochPlan) {
        let peaks = Set(heads.map(\.config.peakLR)).sorted().map { String(format: "%g", $0) }.joined(separator: ", ")
        let precisionNote: String
        switch config.precision {
        case .fp32: precisionNote = ""
        case .fp16: precisionNote = ", amp (fp16 GEMM operands, loss scale \(Int(LossScaler().scale)))"
        case .bf16: precisionNote = ", bf16 (bf16 GEMM operands, fp32 accumulation, no loss scaling)"
        }
        log("training \(heads.map(\.name).joined(separator: ", ")) on \(plan.samples) samples\(train.views > 1 ? " × \(train.views) cached views (one per epoch)" : "") (\(plan.steps) steps/epoch, batch \(config.batchSize)×\(config.accumIter)), peak lr \(peaks)\(precisionNote), \(ctx.device.name)")
        // A warm-up as long as the run never reaches the peak it prints (a sweep's settings then end alike).
        if config.warmupEpochs >= Double(config.epochs), config.warmupEpochs > 0, let top = heads.map(\.config.peakLR).max() {
            let last = Double(config.epochs) - 1 / Double(max(plan.steps, 1))
            let text = "--warmup-epochs \(String(format: "%g", config.warmupEpochs)) is not shorter than --epochs \(config.epochs): the learning rate only ramps up "
                + "and reaches \(String(format: "%.3g", top * last / config.warmupEpochs)) at the last step, not the peak \(String(format: "%g", top)); pass a shorter --warmup-epochs"
            logger.warning("\(text)")
        }
    }

    /// One epoch's training steps for `active`: each head's tally and lr are its own (`HeadRun`);
    /// `stepDone` runs after every step (the progress line).
    func trainEpoch(_ epoch: Int, _ active: [HeadRun], _ plan: EpochPlan, profiler: inout StepProfiler, stepDone: (Int) -> Void) throws {
        let epochOrder = plan.order(epoch)
        guard epochOrder.count / config.batchSize == plan.steps, epochOrder.allSatisfy({ $0 >= 0 && $0 < train.samples }) else {
            throw TrainingError("the sample order of epoch \(epoch + 1) has \(epochOrder.count) entries or indices outside the \(train.samples) samples")
        }
        for h in heads { h.lr = h.schedule.lr(atEpoch: Double(epoch)) }
        for h in active { h.tally = EpochTally() }
        // This process's slice of every global batch (the whole batch alone).
        let local = config.batchSize / group.size, first = group.rank * local
        let stream = train.batches((0..<plan.steps).map { Array(epochOrder[($0 * config.batchSize + first)..<($0 * config.batchSize + first + local)]) }, epoch: epoch)
        for step in 0..<plan.steps {
            try profiler.begin(ctx, step: step)
            // Upstream: the lr is set at the first micro-batch of each group; the optimiser steps
            // after the last one.
            if step % config.accumIter == 0 {
                for h in heads { h.lr = h.schedule.lr(atEpoch: Double(epoch) + Double(step) / Double(plan.steps)) }
            }
            let apply = (step + 1) % config.accumIter == 0
            // A batch short of images that could not be read is still a step (loss averaged over
            // the images it has); none left at all ends the epoch.
            guard var batch = try stream.next() else { break }
            let results = try trainStep(&batch, active, apply: apply, timed: step > 0, at: (epoch, step))
            try logStep(results, active, apply: apply, at: Int((Double(step) / Double(plan.steps) + Double(epoch)) * 1000))
            onStep?(epoch, step, heads[0].lr, Dictionary(uniqueKeysWithValues: results.map { ($0.0.name, $0.1) }))
            if let report = try profiler.end(ctx, step: step) {
                let n = step + 1 - profiler.firstStep
                log("profile of \(n) training step\(n == 1 ? "" : "s") (batch \(config.batchSize), heads \(active.map(\.name).joined(separator: ", "))):\n" + report.table())
                try report.writeJSON(to: output.appendingPathComponent("profile.json").path)
            }
            if step == plan.steps / 2 { KillPoint.reached(.step, head: "*", epoch: epoch) }   // mid-epoch
            stepDone(step)
        }
        for h in active { h.discardPartialGroup() }
        if group.size > 1 {
            var v = active.flatMap { [$0.tally.loss, Double($0.tally.top1), Double($0.tally.count)] }
            try group.allReduceSum(&v)
            for (i, h) in active.enumerated() { h.tally = EpochTally(loss: v[3 * i], top1: Int(v[3 * i + 1]), count: Int(v[3 * i + 2])) }
        }
    }

    /// One training step of every active head on `batch`: recorded back to back, one read for
    /// all of them; the optimiser steps on `apply`. A non-finite loss stops its head.
    func trainStep(_ batch: inout DeviceBatch, _ active: [HeadRun], apply: Bool, timed timedStep: Bool, at: (epoch: Int, step: Int)) throws -> [(HeadRun, BatchResult)] {
        // Each probe's own device time (GPU timestamps around its commands; not across a group:
        // BatchNorm there waits for the group inside a probe's step).
        let timed = timedStep && ctx.device.capabilities.timestamps && !ctx.stream.profiling && group.size == 1
        // Data-parallel: the loss is the mean over the group's batch (whose unreadable images
        // differ by process), and the optimiser steps after the group has summed the gradients.
        let parallel = group.size > 1
        // The step waits for the read when it needs the group or (fp16) checks the gradients.
        let stepAfterRead = parallel || config.precision.usesLossScaling
        var groupBatch = [Double(batch.size)]
        if parallel { try group.allReduceSum(&groupBatch) }
        var pending: [(HeadRun, PendingResult)] = []
        for h in active where h.stopReason == nil {
            if timed { try ctx.stream.beginRegion(h.timingRegion) }
            pending.append((h, try h.record(&batch, train: true, gradScale: 1 / Float(groupBatch[0] * Double(config.accumIter)),
                                            applyStep: apply && !stepAfterRead ? h.lr : nil)))
            if timed { try ctx.stream.endRegion(h.timingRegion) }
        }
        try ctx.finish()
        // Taken now: reading the results submits again, which starts the timings afresh.
        let seconds = pending.map { timed ? ctx.stream.nanoseconds($0.0.timingRegion).map { $0 / 1e9 } : nil }
        var read = try pending.map { try $0.1.read(ctx) }
        if parallel {
            // One sum over the group per step: each probe's "loss not finite" flag, then (on an
            // optimiser step) every probe's gradients.
            let finite = try allReduceFlagsAndGradients(pending.map(\.0), finite: read.map(\.finite), gradients: apply)
            for i in read.indices { read[i].finite = finite[i] }
        }
        for (((h, _), r), s) in zip(zip(pending, read), seconds) {
            if let s { h.timedSteps += 1; h.timedImages += batch.size; h.timedSeconds += s }
            if stepAfterRead && apply && r.finite { try h.applyOptimizer(lr: h.lr) }
            guard r.finite else {
                h.stopReason = "non-finite loss at epoch \(at.epoch + 1), step \(at.step + 1); stopped (its last good checkpoint is kept)"
                log("\(h.name): \(h.stopReason!)")
                continue
            }
            h.tally.add(r)
        }
        return zip(pending.map(\.0), read).map { ($0, $1) }
    }

    /// TensorBoard at each optimiser step, as upstream's engine: loss and lr at
    /// epoch_1000x = (step / steps + epoch) · 1000 (per head when several train).
    func logStep(_ results: [(HeadRun, BatchResult)], _ active: [HeadRun], apply: Bool, at: Int) throws {
        guard let tb = tensorBoard, writes, apply else { return }
        for (h, r) in results where r.count > 0 {
            let prefix = active.count == 1 ? "" : "\(h.name)/"
            try tb.scalar(prefix + "loss", r.lossSum / Double(r.count), step: at)
            try tb.scalar(prefix + "lr", h.lr, step: at)
        }
    }
}
