import Foundation
import ProbeTestSupport
import Testing

/// Device memory as on a discrete GPU: every transfer through staging buffers and a device budget
/// well below the data. Token batches stream from the host, so training needs the heads and a
/// few batches on the device, not the dataset; running out is a clear error naming the budget.
@Suite struct DeviceMemoryTests {
    @Test func trainsWithABudgetBelowTheDataThroughStaging() throws {
        let dir = try temporaryDirectory("memory-budget")
        // 2048 × 64 tokens × 64 wide in f32: 32 MiB of training tokens, four times the budget.
        let synth = try runVkprobe(["synth", "--output", dir.appendingPathComponent("data").path, "--train-samples", "2048", "--val-samples", "256"])
        #expect(synth.status == 0, "\(synth.stderr)")
        let data = dir.appendingPathComponent("data/train.safetensors").path
        let bytes = try #require(try FileManager.default.attributesOfItem(atPath: data)[.size] as? Int)
        let budget = 8 << 20
        #expect(bytes >= 4 * budget, "the training tokens (\(bytes) bytes) must exceed the budget several times")
        let args = ["train", "--validation", "--train-tokens", data, "--val-tokens", dir.appendingPathComponent("data/val.safetensors").path,
                    "--heads", "ep,lp_gap", "--epochs", "2", "--batch-size", "64", "--warmup-epochs", "0", "--blr", "0.5"]
        let r = try runVkprobe(args + ["--output", dir.appendingPathComponent("run").path],
                               environment: ["VKPROBE_MEMORY_BUDGET": "\(budget)", "VKPROBE_FORCE_STAGING": "1"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("peak device memory") && r.stdout.contains("(budget 8.0 MiB"), "\(r.stdout)")
        // The same run without budget or staging: the same accuracies (the same arithmetic).
        let free = try runVkprobe(args + ["--output", dir.appendingPathComponent("free").path])
        #expect(free.status == 0, "\(free.stderr)")
        func summary(_ run: String) throws -> [String: Any] {
            try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("\(run)/summary.json"))) as? [String: Any])
        }
        let (constrained, unconstrained) = (try summary("run"), try summary("free"))
        let peak = try #require(constrained["peak_device_memory_bytes"] as? Int)
        #expect(peak > 0 && peak <= budget, "peak \(peak) under the budget \(budget)")
        for head in ["ep", "lp_gap"] {
            func acc(_ s: [String: Any]) -> Double? { ((s["heads"] as? [String: Any])?[head] as? [String: Any])?["best_acc1"] as? Double }
            #expect(acc(constrained) != nil && acc(constrained) == acc(unconstrained), "\(head): \(String(describing: acc(constrained))) vs \(String(describing: acc(unconstrained)))")
        }
        // A budget below one batch: refused with the budget named, no crash.
        let tiny = try runVkprobe(args + ["--output", dir.appendingPathComponent("tiny").path],
                                  environment: ["VKPROBE_MEMORY_BUDGET": "\(1 << 20)", "VKPROBE_FORCE_STAGING": "1"])
        #expect(tiny.status != 0 && tiny.stderr.contains("memory budget of 1.0 MiB") && tiny.stderr.contains("exhausted"), "\(tiny.stderr)")
        // The failed run leaves no empty head folders behind.
        let left = (try? FileManager.default.subpathsOfDirectory(atPath: dir.appendingPathComponent("tiny").path)) ?? []
        #expect(left.allSatisfy { !["ep", "lp_gap"].contains($0) }, "empty head folders left by a failed run: \(left)")
    }

    /// Evaluation passes free what they allocate: device memory after epoch 1 equals that after
    /// epoch 6 (an evaluation graph that kept its tape leaked 21 MiB per epoch here).
    @Test func evaluationLeavesNothingBehind() throws {
        let dir = try temporaryDirectory("memory-epochs")
        let synth = try runVkprobe(["synth", "--output", dir.appendingPathComponent("data").path, "--train-samples", "1024", "--val-samples", "512"])
        #expect(synth.status == 0, "\(synth.stderr)")
        // Six epochs under a budget two epochs' leak would exceed.
        let r = try runVkprobe(["train", "--train-tokens", dir.appendingPathComponent("data/train.safetensors").path,
                                "--val-tokens", dir.appendingPathComponent("data/val.safetensors").path, "--heads", "ep",
                                "--epochs", "6", "--batch-size", "256", "--warmup-epochs", "0", "--output", dir.appendingPathComponent("run").path],
                               environment: ["VKPROBE_MEMORY_BUDGET": "\(40 << 20)"])
        #expect(r.status == 0, "\(r.stderr)")
    }
}
