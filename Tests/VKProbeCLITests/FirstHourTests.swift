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

    /// A second `train` into a finished run's folder with other settings is refused, naming each
    /// difference and the switches (nothing written: the first run's metrics stay); the same
    /// settings are refused too (continue with --resume); --overwrite replaces the run, its stale
    /// report included.
    @Test func aFinishedRunIsNeverOverwrittenSilently() throws {
        let dir = try temporaryDirectory("first-hour-overwrite")
        let data = dir.appendingPathComponent("data")
        #expect(try runVkprobe(["synth", "--output", data.path, "--train-samples", "64", "--val-samples", "32", "--tokens", "8", "--dim", "16"]).status == 0)
        let run = dir.appendingPathComponent("run1")
        func train(_ extra: [String]) throws -> CLIRun {
            try runVkprobe(["train", "--train-tokens", data.appendingPathComponent("train.safetensors").path, "--val-tokens", data.appendingPathComponent("val.safetensors").path,
                            "--heads", "lp", "--batch-size", "16", "--output", run.path] + extra)
        }
        func epochsRecorded() throws -> Int { try String(contentsOf: run.appendingPathComponent("lp/metrics.jsonl"), encoding: .utf8).split(separator: "\n").count }
        #expect(try train(["--epochs", "2", "--seed", "1"]).status == 0)
        try FileManager.default.createDirectory(at: run.appendingPathComponent("report"), withIntermediateDirectories: true)
        let other = try train(["--epochs", "1", "--seed", "5"])
        #expect(other.status != 0 && other.stderr.contains("already holds a run (lp: 2 epochs done, other settings — epochs: checkpoint 2, now 1; seed: checkpoint 1, now 5)")
                && other.stderr.contains("--overwrite") && other.stderr.contains("nothing was written"), "\(other.stderr)")
        #expect(try epochsRecorded() == 2)
        let same = try train(["--epochs", "2", "--seed", "1"])
        #expect(same.status != 0 && same.stderr.contains("the same settings") && same.stderr.contains("continue it with --resume"), "\(same.stderr)")
        let replaced = try train(["--epochs", "1", "--seed", "5", "--overwrite"])
        #expect(replaced.status == 0 && replaced.stdout.contains("note: --overwrite: the earlier run"), "\(replaced.stdout) \(replaced.stderr)")
        #expect(try epochsRecorded() == 1)
        // The run records the vkprobe that wrote it, as `vkprobe --version` names it.
        let version = try runVkprobe(["--version"])
        #expect(version.status == 0 && version.stdout.hasPrefix("vkprobe ") && version.stdout.contains("(commit "), "\(version.stdout)")
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("summary.json"))) as? [String: Any]
        let recorded = try #require(summary?["version"] as? String)
        #expect(version.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "vkprobe " + recorded, "\(version.stdout) vs \(recorded)")
        #expect(!FileManager.default.fileExists(atPath: run.appendingPathComponent("report").path), "the earlier run's report is stale")
    }

    /// The README's synthetic-task claim, with its commands run as the README writes them.
    @Test func theSyntheticTaskClaimHolds() throws {
        let readme = try String(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("README.md"), encoding: .utf8)
        let section = try #require(readme.components(separatedBy: "### Synthetic token tasks").dropFirst().first)
        let block = try #require(section.components(separatedBy: "```sh\n").dropFirst().first?.components(separatedBy: "```").first)
        #expect(section.contains("gives EP 100% and `lp_gap` 13% top-1"))
        let dir = try temporaryDirectory("synthetic-claim")
        for command in block.replacingOccurrences(of: "\\\n", with: " ").split(separator: "\n") {
            var words = command.split(separator: " ").map(String.init)
            #expect(words.first == "vkprobe")
            words = words.dropFirst().map { $0.replacingOccurrences(of: "synthetic", with: dir.appendingPathComponent("synthetic").path) }
            let r = try runVkprobe(words)
            #expect(r.status == 0, "\(command): \(r.stderr)")
        }
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("synthetic/run/summary.json"))) as? [String: Any]
        let heads = try #require(summary?["heads"] as? [String: [String: Any]])
        let ep = try #require(heads["ep"]?["best_acc1"] as? Double), gap = try #require(heads["lp_gap"]?["best_acc1"] as? Double)
        #expect(ep >= 99 && gap <= 20, "EP \(ep)%, lp_gap \(gap)%")
    }

    /// The demo's --image-size is what its help says: a multiple of 14.
    @Test func demoImageSizeIsAMultipleOf14() throws {
        let dir = try temporaryDirectory("first-hour-demo-size")
        let r = try runVkprobe(["demo", "--output", dir.appendingPathComponent("d").path, "--image-size", "100"])
        #expect(r.status != 0 && r.stderr.contains("--image-size 100: a multiple of 14") && r.stderr.contains("e.g. 98"), "\(r.stderr)")
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
        #expect(r.stderr.contains("warning: --warmup-epochs 10 is not shorter than --epochs 2: the learning rate only ramps up and reaches 0.00188 at the last step, not the peak 0.0125"),
                "\(r.stderr)")
    }
}
