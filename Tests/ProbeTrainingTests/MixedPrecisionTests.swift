import Logging
import Foundation
import ProbeData
import ProbeKernels
import ProbeTestSupport
import Testing
@testable import ProbeTraining

/// Four epochs of EP on the small task, as `vkprobe train` arguments (without --output).
func epArguments(_ dir: URL) throws -> [String] {
    let (train, val) = try smallTask(dir)
    return ["train", "--train-tokens", train, "--val-tokens", val, "--heads", "ep", "--ep-queries", "4", "--lr", "1.0",
            "--warmup-epochs", "1", "--epochs", "4", "--batch-size", "32", "--seed", "3"]
}

/// Every epoch of `b` within `relative` of `a`'s losses and `samples` of its 128 validation samples.
func expectTracks(_ a: [EpochMetrics], _ b: [EpochMetrics], relative: Double, samples: Double, sourceLocation: SourceLocation = #_sourceLocation) {
    for (x, y) in zip(a, b) {
        #expect(abs(x.val_loss - y.val_loss) <= relative * x.val_loss && abs(x.train_loss - y.train_loss) <= relative * x.train_loss,
                "epoch \(x.epoch): losses \(x.train_loss)/\(x.val_loss) vs \(y.train_loss)/\(y.val_loss)", sourceLocation: sourceLocation)
        #expect(abs(x.val_acc1 - y.val_acc1) <= samples * 100 / 128 + 1e-9, "epoch \(x.epoch): val acc \(x.val_acc1) vs \(y.val_acc1)",
                sourceLocation: sourceLocation)
    }
}

/// Mixed precision for the heads: fp16 (`--amp`: fp16 GEMM operands with fp32 accumulation and
/// master weights, dynamic loss scaling) and bf16 (the same without loss scaling).
@Suite(.serialized) struct MixedPrecisionTests {
    /// The same EP run in fp32 and with --amp. fp16 rounds each GEMM operand by at most
    /// 2⁻¹¹ ≈ 4.9e-4 relative, so each step's gradients move by about 1e-3 relative; EP's four
    /// epochs here stay that close (measured: losses within 4e-5 relative, accuracies equal), so
    /// losses must agree within 1e-3 and val accuracy within one of the 128 samples — yet not bit
    /// for bit (the fp16 path ran). (Heads whose training amplifies small differences, abmilp
    /// here, drift by 1% in four epochs: their trajectories are not compared.)
    @Test func ampTrainsLikeFp32() throws {
        let dir = try temporaryDirectory()
        let args = try epArguments(dir)
        let full = try runVkprobe(args + ["--output", dir.appendingPathComponent("fp32").path])
        let amp = try runVkprobe(args + ["--amp", "float16", "--output", dir.appendingPathComponent("amp").path])
        #expect(full.status == 0 && amp.status == 0, "\(full.stderr)\(amp.stderr)")
        #expect(amp.stdout.contains("amp (fp16 GEMM operands, loss scale 65536)"))
        let a = try metricsWithoutTime(dir.appendingPathComponent("fp32"), "ep"), b = try metricsWithoutTime(dir.appendingPathComponent("amp"), "ep")
        #expect(a.count == 4 && b.count == 4)
        expectTracks(a, b, relative: 1e-3, samples: 1)
        #expect(zip(a, b).contains { $0.train_loss != $1.train_loss }, "--amp gave fp32's losses bit for bit: the fp16 path did not run")
        // Killed after epoch 2's state and resumed (the loss scale comes back from the state):
        // the same run as without the kill.
        let killed = dir.appendingPathComponent("killed")
        let interrupted = try runVkprobe(args + ["--amp", "float16", "--output", killed.path], environment: ["VKPROBE_KILL_AT": "state:ep:1"])
        #expect(interrupted.status != 0)
        #expect(try runVkprobe(args + ["--amp", "float16", "--output", killed.path, "--resume"]).status == 0)
        #expect(try metricsWithoutTime(killed, "ep") == b, "an --amp run resumed after a kill differs")
        // A run cannot change precision on resume.
        let switched = try runVkprobe(args + ["--output", dir.appendingPathComponent("fp32").path, "--resume", "--amp", "float16"])
        #expect(switched.status != 0 && switched.stderr.contains("amp"), "\(switched.stderr)")
    }

    /// The same EP run in fp32 and with --head-precision bf16. bf16 keeps 8 significant bits to fp16's
    /// 11, so rounding a GEMM operand moves it 8× more (up to 2⁻⁸ ≈ 3.9e-3 relative against the
    /// 2⁻¹¹ of the test above): the losses must agree within 8e-3 (8× that test's bound), val
    /// accuracy within two of the 128 samples — yet differ from both fp32 and fp16 (the bf16 kernels ran: the
    /// profile names bf16 GEMM operands and no f16 ones). No loss scaling (bf16 has fp32's
    /// range); killed and resumed it is the same run; a resume cannot switch precision.
    @Test func bf16TrainsLikeFp32() throws {
        let dir = try temporaryDirectory()
        let args = try epArguments(dir)
        let full = try runVkprobe(args + ["--output", dir.appendingPathComponent("fp32").path])
        let half = try runVkprobe(args + ["--head-precision", "fp16", "--output", dir.appendingPathComponent("fp16").path])
        let bf = try runVkprobe(args + ["--head-precision", "bf16", "--profile", "1", "--output", dir.appendingPathComponent("bf16").path])
        #expect(full.status == 0 && half.status == 0 && bf.status == 0, "\(full.stderr)\(half.stderr)\(bf.stderr)")
        #expect(bf.stdout.contains("bf16 (bf16 GEMM operands, fp32 accumulation, no loss scaling)"), "\(bf.stdout)")
        let a = try metricsWithoutTime(dir.appendingPathComponent("fp32"), "ep")
        let h = try metricsWithoutTime(dir.appendingPathComponent("fp16"), "ep")
        let b = try metricsWithoutTime(dir.appendingPathComponent("bf16"), "ep")
        #expect(a.count == 4 && b.count == 4)
        expectTracks(a, b, relative: 8e-3, samples: 2)
        #expect(zip(a, b).contains { $0.train_loss != $1.train_loss }, "bf16 gave fp32's losses bit for bit: the bf16 path did not run")
        #expect(zip(h, b).contains { $0.train_loss != $1.train_loss }, "bf16 gave fp16's losses bit for bit")
        let profile = try String(contentsOf: dir.appendingPathComponent("bf16/profile.json"), encoding: .utf8)
        #expect(profile.contains("bf16") && !profile.contains(" f16"), "the profile of a bf16 step: \(profile.prefix(2000))")
        // Killed after epoch 2's state and resumed: the same run as without the kill.
        let killed = dir.appendingPathComponent("killed")
        let interrupted = try runVkprobe(args + ["--head-precision", "bf16", "--output", killed.path], environment: ["VKPROBE_KILL_AT": "state:ep:1"])
        #expect(interrupted.status != 0)
        #expect(try runVkprobe(args + ["--head-precision", "bf16", "--output", killed.path, "--resume"]).status == 0)
        #expect(try metricsWithoutTime(killed, "ep") == b, "a bf16 run resumed after a kill differs")
        for other in [["--head-precision", "fp16"], ["--amp", "float16"], ["--amp", "none"], []] {
            let switched = try runVkprobe(args + ["--output", killed.path, "--resume"] + other)
            #expect(switched.status != 0 && switched.stderr.contains("bf16"), "\(other): \(switched.stderr)")
        }
        let both = try runVkprobe(args + ["--output", dir.appendingPathComponent("x").path, "--amp", "float16", "--head-precision", "bf16"])
        #expect(both.status != 0 && both.stderr.contains("--amp float16 and --head-precision bf16 disagree"), "\(both.stderr)")
        let spelled = try runVkprobe(args + ["--output", dir.appendingPathComponent("x").path, "--amp", "fp8"])
        #expect(spelled.status != 0 && spelled.stderr.contains("float16, bfloat16 or none"), "\(spelled.stderr)")
        let bad = try runVkprobe(args + ["--output", dir.appendingPathComponent("x").path, "--head-precision", "fp8"])
        #expect(bad.status != 0 && bad.stderr.contains("fp32, fp16, bf16"), "\(bad.stderr)")
    }

    /// A scale so large that the scaled gradients overflow: those steps are skipped (parameters
    /// untouched), the scale halves each time, and training goes on once they are finite.
    @Test func overflowingScaleSkipsStepsAndBacksOff() throws {
        let dir = try temporaryDirectory()
        let (train, val) = try smallTask(dir)
        var config = smallConfig(["lp_gap"])
        config.precision = .fp16; config.epochs = 3
        let ctx = try makeContext()
        let trainer = try Trainer(config: config, ctx: ctx, train: try TokenDataset(path: train), val: try TokenDataset(path: val),
                                  output: dir.appendingPathComponent("run"))
        trainer.logger = .silent
        let h = trainer.heads[0]
        let start = try ctx.read(try #require(h.state[h.state.trainable[0].name]))
        // At initialisation |p − y| ≈ 0.9 for the true class: scaled by 2²⁴/64 or 2²³/64 the loss
        // gradient exceeds fp16's 65504 when it is rounded for the GEMMs, so the first two steps
        // cannot be finite (as GradScaler would find on a GPU).
        h.lossScaler = LossScaler(scale: 16_777_216)
        var firstSteps: [Double] = []
        trainer.onStep = { e, step, _, _ in if e == 0 && step < 2 { firstSteps.append(h.lossScaler!.scale) } }
        _ = try trainer.run()
        #expect(h.skippedSteps >= 2 && firstSteps == [8_388_608, 4_194_304], "skipped \(h.skippedSteps), scales \(firstSteps)")
        #expect(h.optimizerSteps + h.skippedSteps == 24, "3 epochs of 512 samples / 64")
        #expect(h.optimizerSteps > 0 && h.lossScaler!.scale <= 4_194_304, "training resumed once the scaled gradients were finite")
        #expect(try ctx.read(try #require(h.state[h.state.trainable[0].name])) != start)
        expectNoValidationMessages(ctx)
    }

    @Test func scalerGrowsAfter2000GoodStepsAndHalvesOnOverflow() {
        var s = LossScaler()
        for _ in 0..<1999 { s.update(finite: true) }
        #expect(s.scale == 65536 && s.goodSteps == 1999)
        s.update(finite: true)
        #expect(s.scale == 131072 && s.goodSteps == 0)
        s.update(finite: true); s.update(finite: false)
        #expect(s.scale == 65536 && s.goodSteps == 0)
    }
}
