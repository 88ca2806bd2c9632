import Foundation
import ProbeTestSupport
import Testing

/// Mistakes a new user makes get a sentence naming the flag or switch and what to do.
@Suite struct FirstHourTests {
    /// The default `--k …,200` on a bank of 64 samples names --k and the values that fit.
    @Test func knnOnASmallSetNamesK() throws {
        let dir = try temporaryDirectory("first-hour-knn")
        let synth = try runVkprobe(["synth", "--output", dir.appendingPathComponent("data").path, "--train-samples", "64", "--val-samples", "32"])
        #expect(synth.status == 0, "\(synth.stderr)")
        let r = try runVkprobe(["knn", "--train-tokens", dir.appendingPathComponent("data/train.safetensors").path,
                                "--val-tokens", dir.appendingPathComponent("data/val.safetensors").path])
        #expect(r.status != 0 && r.stderr.contains("--k 5,10,15,20,50,100,200: k = 100 is more neighbours than the 64 training samples")
                && r.stderr.contains("pass --k 5,10,15,20,50"), "\(r.stderr)")
    }

    /// VKPROBE_MEMORY_BUDGET=2G is a budget of 2 GiB; one that does not parse is refused, not ignored.
    @Test func memoryBudgetSizesAreReadOrRefused() throws {
        let bad = try runVkprobe(["smoke"], environment: ["VKPROBE_MEMORY_BUDGET": "plenty"])
        #expect(bad.status != 0 && bad.stderr.contains("VKPROBE_MEMORY_BUDGET=plenty: expected a size"), "\(bad.stderr)")
        let good = try runVkprobe(["smoke"], environment: ["VKPROBE_MEMORY_BUDGET": "2G"])
        #expect(good.status == 0, "\(good.stderr)")
    }

    /// `--epochs 2` under the default 10-epoch warm-up says the peak is never reached, and what is.
    @Test func aWarmUpLongerThanTheRunIsSaid() throws {
        let dir = try temporaryDirectory("first-hour-warmup")
        let synth = try runVkprobe(["synth", "--output", dir.appendingPathComponent("data").path, "--train-samples", "64", "--val-samples", "32"])
        #expect(synth.status == 0, "\(synth.stderr)")
        let r = try runVkprobe(["train", "--train-tokens", dir.appendingPathComponent("data/train.safetensors").path,
                                "--val-tokens", dir.appendingPathComponent("data/val.safetensors").path, "--heads", "lp_gap",
                                "--epochs", "2", "--batch-size", "32", "--output", dir.appendingPathComponent("run").path])
        #expect(r.status == 0, "\(r.stderr)")
        // lr = 0.1 × 32 / 256 = 0.0125 at the peak; the last of 4 steps is at epoch 1.5 of 10: 0.0125 × 0.15.
        #expect(r.stdout.contains("warning: --warmup-epochs 10 is not shorter than --epochs 2: the learning rate only ramps up and reaches 0.00188 at the last step, not the peak 0.0125"),
                "\(r.stdout)")
    }
}
