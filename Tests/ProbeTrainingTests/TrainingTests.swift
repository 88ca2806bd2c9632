import Foundation
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
func metricsWithoutTime(_ dir: URL, _ head: String) throws -> [String] {
    let text = try String(contentsOf: dir.appendingPathComponent(head).appendingPathComponent("metrics.jsonl"), encoding: .utf8)
    return try text.split(separator: "\n").map { line in
        var m = try JSONDecoder().decode(EpochMetrics.self, from: Data(line.utf8))
        m.seconds = 0
        return String(decoding: try JSONEncoder().encode(m), as: UTF8.self)
    }
}

@Suite(.serialized) struct TrainingTests {
    /// Kill -9 in the middle of training, then --resume: the run ends with the same metrics and
    /// summary as an uninterrupted run with the same seed.
    @Test func resumeAfterSIGKILLMatchesAnUninterruptedRun() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (train, val) = try smallTask(dir)
        let args = ["train", "--train-tokens", train, "--val-tokens", val, "--heads", "ep,lp", "--ep-queries", "4", "--lr", "1.0",
                    "--warmup-epochs", "1", "--epochs", "6", "--batch-size", "16", "--seed", "3"]
        func run(_ extra: [String], killAfterEpochs: Int? = nil) throws -> Int32 {
            let p = Process()
            p.executableURL = try vkprobeBinary()
            p.arguments = args + extra
            var env = ProcessInfo.processInfo.environment
            env["VKPROBE_CACHE_DIR"] = ""
            p.environment = env
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            if let k = killAfterEpochs {
                let metrics = URL(fileURLWithPath: extra[1]).appendingPathComponent("ep/metrics.jsonl")
                let deadline = Date().addingTimeInterval(120)
                while Date() < deadline, p.isRunning {
                    if let t = try? String(contentsOf: metrics, encoding: .utf8), t.split(separator: "\n").count >= k { break }
                    usleep(20_000)
                }
                usleep(150_000)   // into the next epoch
                kill(p.processIdentifier, SIGKILL)
            }
            p.waitUntilExit()
            return p.terminationStatus
        }
        let whole = dir.appendingPathComponent("whole"), killed = dir.appendingPathComponent("killed")
        #expect(try run(["--output", whole.path]) == 0)
        _ = try run(["--output", killed.path], killAfterEpochs: 2)
        let linesBefore = (try? metricsWithoutTime(killed, "ep").count) ?? 0
        #expect(linesBefore < 6, "the process was killed before finishing (\(linesBefore) epochs done)")
        #expect(try run(["--output", killed.path, "--resume"]) == 0)
        for head in ["ep", "lp"] { #expect(try metricsWithoutTime(killed, head) == metricsWithoutTime(whole, head), "\(head) metrics differ after resume") }
        let a = try JSONSerialization.jsonObject(with: Data(contentsOf: whole.appendingPathComponent("summary.json"))) as! [String: Any]
        let b = try JSONSerialization.jsonObject(with: Data(contentsOf: killed.appendingPathComponent("summary.json"))) as! [String: Any]
        #expect(NSDictionary(dictionary: a).isEqual(to: b))
        // The final heads are identical too.
        let fa = try SafeTensorsFile(path: whole.appendingPathComponent("ep/checkpoint-last.safetensors").path)
        let fb = try SafeTensorsFile(path: killed.appendingPathComponent("ep/checkpoint-last.safetensors").path)
        for n in fa.names { #expect(try fa.floats(n) == fb.floats(n), "\(n)") }
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
        var messages: [String] = []
        trainer.log = { messages.append($0) }
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
        #expect(messages.contains { $0.contains("lp") && $0.contains("non-finite") })
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
        let t2 = try Trainer(config: c2, ctx: ctx, train: TokenDataset(path: train), val: TokenDataset(path: val), output: out)
        #expect { try t2.resume() } throws: { "\($0)".contains("not a ep training checkpoint") }
    }

    @Test func accumulationEarlyStoppingAndF16Tokens() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (train, val) = try smallTask(dir)
        let ctx = try makeContext()
        // Gradient accumulation: one optimiser step per two micro-batches.
        var c = smallConfig(["ep"]); c.epochs = 1; c.accumIter = 2
        let t = try Trainer(config: c, ctx: ctx, train: TokenDataset(path: train), val: TokenDataset(path: val), output: dir.appendingPathComponent("accum"))
        _ = try t.run()
        #expect(t.heads[0].optimizerSteps == 512 / 64 / 2)
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
