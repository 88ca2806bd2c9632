import Foundation
import ProbeData
import ProbeHeads
import ProbeKernels
import ProbeShaders
import SafeTensors
import ProbeTestSupport
import Testing
@testable import ProbeTraining
import VulkanCompute

/// A small synthetic task (512 training samples, 16 tokens of width 32).
func smallTask(_ dir: URL, dim: Int = 32, nanCLS: Bool = false) throws -> (String, String) {
    for (file, n, seed) in [("train.safetensors", 512, UInt64(1)), ("val.safetensors", 128, UInt64(2))] {
        var spec = SyntheticTokens.Spec(samples: n)
        spec.tokens = 16; spec.dim = dim; spec.classes = 10; spec.seed = seed
        try SyntheticTokens.write(spec, to: dir.appendingPathComponent(file).path)
    }
    return (dir.appendingPathComponent("train.safetensors").path, dir.appendingPathComponent("val.safetensors").path)
}

func smallConfig(_ heads: [String]) -> TrainingConfig {
    var c = TrainingConfig(heads: heads)
    c.epochs = 3; c.batchSize = 64; c.lr = 1.0; c.warmupEpochs = 1; c.queries = 4; c.seed = 7
    return c
}

/// Metrics lines without the wall-clock field.
func metricsWithoutTime(_ dir: URL, _ head: String) throws -> [EpochMetrics] {
    let text = try String(contentsOf: dir.appendingPathComponent(head).appendingPathComponent("metrics.jsonl"), encoding: .utf8)
    return try text.split(separator: "\n").map { line in
        var m = try JSONDecoder().decode(EpochMetrics.self, from: Data(line.utf8))
        m.seconds = 0
        return m
    }
}

@Suite(.serialized) struct TrainingTests {
    /// Killed (SIGKILL) at any of the places a run can be: mid-epoch, after an epoch's metrics,
    /// between the best and last checkpoints, with the training state written to its temporary
    /// file but not yet renamed, right after it, between two heads' checkpoints, after the
    /// summary. `--resume` must then end exactly as an uninterrupted run: the same metrics, summary
    /// and final tensors. (`VKPROBE_KILL_AT` makes the trainer kill itself at the named place.)
    @Test(arguments: ["step:*:1", "metrics:ep:1", "best:ep:1", "last:ep:1", "state-temp:ep:1", "state:ep:1", "state:lp:2", "summary:*:0"])
    func resumeAfterSIGKILLMatchesAnUninterruptedRun(_ killAt: String) throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (train, val) = try smallTask(dir)
        let args = ["train", "--train-tokens", train, "--val-tokens", val, "--heads", "ep,lp", "--ep-queries", "4", "--lr", "1.0",
                    "--warmup-epochs", "1", "--epochs", "4", "--batch-size", "32", "--seed", "3"]
        let whole = dir.appendingPathComponent("whole"), killed = dir.appendingPathComponent("killed")
        #expect(try runVkprobe(args + ["--output", whole.path]).status == 0)
        let interrupted = try runVkprobe(args + ["--output", killed.path], environment: ["VKPROBE_KILL_AT": killAt])
        #expect(interrupted.status != 0, "the run was not killed at \(killAt)")
        let resumed = try runVkprobe(args + ["--output", killed.path, "--resume"])
        #expect(resumed.status == 0, "resume after a kill at \(killAt) failed: \(resumed.stderr)")
        for head in ["ep", "lp"] {
            #expect(try metricsWithoutTime(killed, head) == metricsWithoutTime(whole, head), "\(head) metrics differ after a kill at \(killAt)")
        }
        // The summaries agree except for the measured throughput (wall-clock dependent).
        func summary(_ dir: URL) throws -> [String: Any] {
            var o = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("summary.json"))) as! [String: Any]
            var heads = o["heads"] as! [String: [String: Any]]
            for k in heads.keys { heads[k]!["train_images_per_s"] = nil }
            o["heads"] = heads
            return o
        }
        #expect(NSDictionary(dictionary: try summary(whole)).isEqual(to: try summary(killed)), "summary differs after a kill at \(killAt)")
        for head in ["ep", "lp"] {
            for file in ["checkpoint-last.safetensors", "checkpoint-best.safetensors"] {
                let fa = try SafeTensorsFile(path: whole.appendingPathComponent("\(head)/\(file)").path)
                let fb = try SafeTensorsFile(path: killed.appendingPathComponent("\(head)/\(file)").path)
                #expect(fa.names == fb.names)
                for n in fa.names { #expect(try fa.floats(n) == fb.floats(n), "\(head)/\(file) \(n) after a kill at \(killAt)") }
            }
        }
        // No temporary file is left behind once the run completes.
        let leftovers = try FileManager.default.subpathsOfDirectory(atPath: killed.path).filter { $0.contains(".tmp-") }
        #expect(leftovers.isEmpty || killAt.hasPrefix("state-temp"), "\(leftovers)")
    }

    /// Resuming with a setting that changes results is refused, naming the setting.
    @Test func resumeWithOtherSettingsIsRefusedNamingThem() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (train, val) = try smallTask(dir)
        let ctx = try makeContext()
        let out = dir.appendingPathComponent("run")
        var c = smallConfig(["ep"]); c.epochs = 1
        _ = try Trainer(config: c, ctx: ctx, train: TokenDataset(path: train), val: TokenDataset(path: val), output: out).run()
        var changed = c
        changed.optimizer.weightDecay = 0.05
        changed.earlyStop = EarlyStopping()
        let t = try Trainer(config: changed, ctx: ctx, train: TokenDataset(path: train), val: TokenDataset(path: val), output: out)
        #expect { try t.resume() } throws: { e in
            "\(e)".contains("weightDecay: checkpoint 0") && "\(e)".contains("0.05") && "\(e)".contains("earlyStop") && "\(e)".contains("nothing was overwritten")
        }
        var momentum = c
        momentum.optimizer.momentum = 0.5
        let t2 = try Trainer(config: momentum, ctx: ctx, train: TokenDataset(path: train), val: TokenDataset(path: val), output: out)
        #expect { try t2.resume() } throws: { "\($0)".contains("momentum: checkpoint 0.9, now 0.5") }
        // The same settings resume.
        try Trainer(config: c, ctx: ctx, train: TokenDataset(path: train), val: TokenDataset(path: val), output: out).resume()
    }

    /// --eval-only evaluates saved heads; without them it is refused rather than evaluating
    /// freshly initialised ones.
    @Test func evalOnlyNeedsSavedHeads() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (train, val) = try smallTask(dir)
        let args = ["train", "--train-tokens", train, "--val-tokens", val, "--heads", "ep", "--ep-queries", "4", "--lr", "1.0",
                    "--warmup-epochs", "1", "--epochs", "1", "--batch-size", "32", "--output", dir.appendingPathComponent("run").path]
        let refused = try runVkprobe(args + ["--eval-only"])
        #expect(refused.status != 0 && refused.stderr.contains("--eval-only") && refused.stderr.contains("ep/checkpoint-last.safetensors does not exist"), "\(refused.stderr)")
        #expect(try runVkprobe(args).status == 0)
        let evaluated = try runVkprobe(args + ["--eval-only"])
        #expect(evaluated.status == 0 && evaluated.stdout.contains("ep: val loss"), "\(evaluated.stdout) \(evaluated.stderr)")
    }

    @Test func badLabelsAndShapesAreRefusedClearly() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (train, val) = try smallTask(dir)
        let ctx = try makeContext()
        var c = smallConfig(["ep"])
        c.classes = 5
        #expect { try Trainer(config: c, ctx: ctx, train: TokenDataset(path: train), val: TokenDataset(path: val), output: dir) }
            throws: { "\($0)".contains("outside [0, 5)") && "\($0)".contains("train.safetensors") }
        let other = dir.appendingPathComponent("wide"); try FileManager.default.createDirectory(at: other, withIntermediateDirectories: true)
        let (_, wideVal) = try smallTask(other, dim: 48)
        #expect { try Trainer(config: smallConfig(["ep"]), ctx: ctx, train: TokenDataset(path: train), val: TokenDataset(path: wideVal), output: dir) }
            throws: { "\($0)".contains("token shapes differ") }
        var big = smallConfig(["ep"]); big.batchSize = 4096
        let t = try Trainer(config: big, ctx: ctx, train: TokenDataset(path: train), val: TokenDataset(path: val), output: dir.appendingPathComponent("big"))
        #expect { _ = try t.run() } throws: { "\($0)".contains("exceeds the 512 training samples") }
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("big").path), "a refused run leaves no (empty) folders")
        #expect { try TokenDataset(path: dir.appendingPathComponent("nope.safetensors").path) } throws: { "\($0)".contains("no such file") }
    }

    /// A head whose loss becomes non-finite stops with a message, keeps its last good checkpoint,
    /// and the other heads go on.
    @Test func nonFiniteLossStopsOnlyThatHead() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (train, val) = try smallTask(dir)
        let ctx = try makeContext()
        let out = dir.appendingPathComponent("run")
        let trainer = try Trainer(config: smallConfig(["ep", "lp"]), ctx: ctx, train: TokenDataset(path: train), val: TokenDataset(path: val), output: out)
        let messages = MessageBox()
        trainer.logger = .capturing(messages)
        var savedCheckpoint = Data()
        trainer.onEpochEnd = { epoch in
            guard epoch == 0 else { return }
            savedCheckpoint = try Data(contentsOf: out.appendingPathComponent("lp/checkpoint-last.safetensors"))
            // Diverge lp: its classifier weights become infinite.
            let lp = trainer.heads.first { $0.name == "lp" }!
            let w = lp.state["1.weight"]!
            lp.state["1.weight"] = try ctx.tensor([Float](repeating: .infinity, count: w.count), w.shape)
        }
        let summary = try trainer.run()
        #expect(summary["lp"]!.status.contains("non-finite loss"))
        #expect(summary["lp"]!.epochs_run == 1)
        #expect(summary["ep"]!.status == "done" && summary["ep"]!.epochs_run == 3)
        #expect(try Data(contentsOf: out.appendingPathComponent("lp/checkpoint-last.safetensors")) == savedCheckpoint)
        #expect(messages.lines.contains { $0.contains("lp") && $0.contains("non-finite") })
    }

    /// summary.json and metrics.jsonl count epochs as the console does (from 1) and spell every key
    /// one way (snake_case, as upstream's log.txt); the first files (camelCase memory keys, epochs
    /// from 0) are still read as they were meant.
    @Test func runFilesCountEpochsAsTheConsoleInOneKeyStyle() throws {
        let dir = try temporaryDirectory()
        let (train, val) = try smallTask(dir)
        let out = dir.appendingPathComponent("run")
        let trainer = try Trainer(config: smallConfig(["lp"]), ctx: try makeContext(), train: TokenDataset(path: train), val: TokenDataset(path: val), output: out)
        trainer.logger = .silent
        _ = try trainer.run()
        let raw = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("summary.json"))) as? [String: Any])
        func keys(_ o: Any, names: Bool = false) -> [String] {
            guard let d = o as? [String: Any] else { return [] }
            // The heads' and splits' names are the user's; their values' keys are ours.
            return d.flatMap { k, v in (names ? [] : [k]) + keys(v, names: !names && ["heads", "unreadable", "best"].contains(k)) }
        }
        let notSnake = keys(raw).filter { $0.range(of: "^[a-z0-9_]+$", options: .regularExpression) == nil }
        #expect(notSnake.isEmpty, "summary.json keys not in snake_case: \(notSnake)")
        #expect(raw["peak_device_memory_bytes"] is Int && raw["format"] as? Int == 2)
        let lp = try #require((raw["heads"] as? [String: Any])?["lp"] as? [String: Any])
        let best = try #require(lp["best_epoch"] as? Int)
        #expect((1...3).contains(best), "best_epoch \(best) outside the console's 1...3")
        let lines = try String(contentsOf: out.appendingPathComponent("lp/metrics.jsonl"), encoding: .utf8).split(separator: "\n")
            .map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        #expect(lines.map { $0["epoch"] as? Int } == [1, 2, 3])
        let history = try metricsWithoutTime(out, "lp")
        #expect(history.map(\.epoch) == [0, 1, 2], "in memory from 0, as checkpoints and TensorBoard steps")
        // The first format: best_epoch from 0, camelCase memory keys, metrics from 0.
        let old = """
            {"heads": {"lp": {"best_acc1": 50, "best_epoch": 1, "acc5": 90, "params": 10, "epochs_run": 3, "status": "done"}},
             "peakDeviceMemoryBytes": 123, "unreadable": {"train": {"images": 4, "unreadable": 1, "fraction": 0.25, "decodedWithWarnings": 2, "first": []}}}
            """
        let first = try JSONDecoder().decode(RunSummary.self, from: Data(old.utf8))
        #expect(first.heads["lp"]?.best_epoch == 2 && first.peakDeviceMemoryBytes == 123 && first.unreadable?["train"]?.decodedWithWarnings == 2)
        let oldLines = "{\"epoch\":0,\"lr\":1,\"train_loss\":1,\"train_acc1\":1,\"val_loss\":1,\"val_acc1\":1,\"val_acc5\":1,\"seconds\":1}\n"
            + "{\"epoch\":1,\"lr\":1,\"train_loss\":1,\"train_acc1\":1,\"val_loss\":1,\"val_acc1\":1,\"val_acc5\":1,\"seconds\":1}\n"
        #expect(EpochMetrics.lines(oldLines).map(\.epoch) == [0, 1])
    }

    @Test func damagedOrForeignCheckpointsAreRefusedOnResume() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (train, val) = try smallTask(dir)
        let ctx = try makeContext()
        let out = dir.appendingPathComponent("run")
        var c = smallConfig(["ep", "lp"]); c.epochs = 1
        _ = try Trainer(config: c, ctx: ctx, train: TokenDataset(path: train), val: TokenDataset(path: val), output: out).run()
        let state = out.appendingPathComponent("ep/checkpoint-last.state.safetensors")
        let metrics = try Data(contentsOf: out.appendingPathComponent("ep/metrics.jsonl"))
        let original = try Data(contentsOf: state)
        try original.prefix(original.count / 2).write(to: state)
        var c2 = c; c2.epochs = 2
        let t = try Trainer(config: c2, ctx: ctx, train: TokenDataset(path: train), val: TokenDataset(path: val), output: out)
        #expect { try t.resume() } throws: { "\($0)".contains("damaged") && "\($0)".contains("nothing was overwritten") }
        #expect(try Data(contentsOf: out.appendingPathComponent("ep/metrics.jsonl")) == metrics)
        // lp's state in ep's place: a foreign checkpoint.
        try FileManager.default.removeItem(at: state)
        try FileManager.default.copyItem(at: out.appendingPathComponent("lp/checkpoint-last.state.safetensors"), to: state)
        let t2 = try Trainer(config: c, ctx: ctx, train: TokenDataset(path: train), val: TokenDataset(path: val), output: out)
        #expect { try t2.resume() } throws: { "\($0)".contains("not a ep training checkpoint") }
    }

    @Test func accumulationEarlyStoppingAndF16Tokens() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (train, val) = try smallTask(dir)
        let ctx = try makeContext()
        // Gradient accumulation: one optimiser step per three micro-batches; as upstream (which
        // zeroes gradients at each epoch's start), the partial group at an epoch's end never steps.
        var c = smallConfig(["ep"]); c.epochs = 2; c.accumIter = 3
        let t = try Trainer(config: c, ctx: ctx, train: TokenDataset(path: train), val: TokenDataset(path: val), output: dir.appendingPathComponent("accum"))
        _ = try t.run()
        #expect(t.heads[0].optimizerSteps == 2 * (512 / 64 / 3))
        // Early stopping: nothing counts as progress, so the head stops after `patience` epochs.
        var e = smallConfig(["lp"]); e.epochs = 5; e.earlyStop = EarlyStopping(patience: 1, minDelta: 1000, minEpochs: 2)
        let summary = try Trainer(config: e, ctx: ctx, train: TokenDataset(path: train), val: TokenDataset(path: val),
                                  output: dir.appendingPathComponent("early")).run()
        #expect(summary["lp"]!.epochs_run == 2 && summary["lp"]!.status.contains("early stop"))
        // f16 token files read as their rounded values.
        let f32 = try TokenDataset(path: train)
        var w = SafeTensorsWriter()
        let tokens = try f32.gatherTokens(Array(0..<8))
        w.add("tokens", float16: tokens, shape: [8, 16, 32])
        w.add("labels", int32: Array(f32.labels.prefix(8)), shape: [8])
        let half = dir.appendingPathComponent("half.safetensors").path
        try w.write(to: half)
        let f16 = try TokenDataset(path: half)
        #expect(try f16.gatherTokens([3, 1]) == (try f32.gatherTokens([3, 1])).map { Float(Float16($0)) })
    }

    /// Upstream's early stopping: progress is a gain above min_delta over the best progress so
    /// far (only progress moves that best), counted from min_epochs.
    @Test func earlyStoppingFollowsUpstream() {
        let rule = EarlyStopping(patience: 2, minDelta: 0.1, minEpochs: 4)
        var s = EarlyStopState()
        let accs = [10.0, 10.05, 10.08, 10.15, 10.2, 10.22, 10.24]
        var stops: [Bool] = []
        for (e, a) in accs.enumerated() { stops.append(s.record(acc1: a, epoch: e, rule: rule)) }
        // Epoch 0: progress (best 10). 1, 2: stale 1, 2 but before min_epochs. 3: 10.15 > 10.1 →
        // progress (best 10.15). 4: 10.2 ≤ 10.25 stale 1. 5: stale 2 → stop.
        #expect(stops == [false, false, false, false, false, true, true])
        #expect(s.best == 10.15)
        // Defaults when enabled, as upstream.
        #expect(EarlyStopping() == EarlyStopping(patience: 5, minDelta: 0.1, minEpochs: 15))
        // SGD as upstream builds it has no momentum; LARS keeps 0.9.
        #expect(OptimizerConfig(kind: .sgd).effectiveMomentum == 0 && !OptimizerConfig(kind: .sgd).usesMomentum)
        #expect(OptimizerConfig(kind: .lars).effectiveMomentum == 0.9)
        #expect(TrainingConfig(heads: ["ep"]).batchSize == 512)
    }

    @Test func lowShotSubsetsAreSeededPerClass() {
        let labels = (0..<200).map { Int32($0 % 10) }
        let a = SeededOrder.subset(labels: labels, shots: 3, fraction: nil, seed: 1)
        #expect(a.count == 30)
        #expect(Dictionary(grouping: a, by: { labels[$0] }).values.allSatisfy { $0.count == 3 })
        #expect(a == SeededOrder.subset(labels: labels, shots: 3, fraction: nil, seed: 1))
        #expect(a != SeededOrder.subset(labels: labels, shots: 3, fraction: nil, seed: 2))
        #expect(SeededOrder.subset(labels: labels, shots: nil, fraction: 0.1, seed: 1).count == 20)
    }

    @Test func scheduleFollowsUpstream() {
        let s = LearningRateSchedule(peak: 1, warmupEpochs: 1, epochs: 4)
        #expect(s.lr(atEpoch: 0) == 0)
        #expect(abs(s.lr(atEpoch: 0.4) - 0.4) < 1e-12)
        #expect(abs(s.lr(atEpoch: 1.2) - 0.9890738) < 1e-6)
        #expect(abs(LearningRateSchedule.scaledLR(blr: 0.1, effectiveBatch: 1024) - 0.4) < 1e-12)
    }
}
