import Foundation
import ProbeTestSupport
import Testing

/// `VKPROBE_KERNELS=gpu` makes lavapipe run the kernel selection a discrete GPU gets: a profiled
/// training step shows only `gemm_tiled` GEMMs (and no CPU-shaped ones); by default the CPU
/// selection's. `make test` runs every golden under it too.
@Suite struct KernelSelectionTests {
    func gemmKernels(_ environment: [String: String]) throws -> Set<String> {
        let dir = try temporaryDirectory("kernel-selection")
        let synth = try runVkprobe(["synth", "--output", dir.appendingPathComponent("d").path, "--train-samples", "128", "--val-samples", "32",
                                    "--tokens", "16", "--dim", "32"])
        #expect(synth.status == 0)
        let run = try runVkprobe(["train", "--validation", "--train-tokens", dir.appendingPathComponent("d/train.safetensors").path,
                                  "--val-tokens", dir.appendingPathComponent("d/val.safetensors").path, "--heads", "ep,lp", "--epochs", "1",
                                  "--batch-size", "32", "--warmup-epochs", "0", "--profile", "1", "--output", dir.appendingPathComponent("run").path],
                                 environment: environment)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(!run.stderr.contains("alidation"), "\(run.stderr)")
        let profile = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("run/profile.json"))) as? [String: Any]
        let rows = (profile?["rows"] as? [[String: Any]]) ?? []
        return Set(rows.filter { ($0["op"] as? String)?.hasPrefix("gemm") == true }.compactMap { $0["kernel"] as? String })
    }

    /// The same training on synthetic tokens under either selection (each with synchronization
    /// validation): per epoch the same validation loss within fp32 rounding of a different
    /// summation order (1e-5 relative: a few ulps per sum over 16 steps of 4 heads' worth of
    /// GEMMs), and the same accuracies but for a prediction or two a rounding flips.
    @Test func bothSelectionsTrainToTheSameNumbers() throws {
        let dir = try temporaryDirectory("selection-numbers")
        let synth = try runVkprobe(["synth", "--output", dir.appendingPathComponent("d").path, "--train-samples", "1024", "--val-samples", "256",
                                    "--tokens", "16", "--dim", "32"])
        #expect(synth.status == 0)
        func metrics(_ selection: String) throws -> [String: [[String: Double]]] {
            let out = dir.appendingPathComponent(selection)
            let run = try runVkprobe(["train", "--validation", "--train-tokens", dir.appendingPathComponent("d/train.safetensors").path,
                                      "--val-tokens", dir.appendingPathComponent("d/val.safetensors").path, "--heads", "ep,lp,abmilp", "--epochs", "3",
                                      "--batch-size", "64", "--warmup-epochs", "1", "--num-heads", "4", "--output", out.path],
                                     environment: ["VKPROBE_KERNELS": selection])
            #expect(run.status == 0, "\(selection): \(run.stderr)")
            var all: [String: [[String: Double]]] = [:]
            for head in ["ep", "lp", "abmilp"] {
                all[head] = try String(contentsOf: out.appendingPathComponent("\(head)/metrics.jsonl"), encoding: .utf8).split(separator: "\n")
                    .map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Double] }
            }
            return all
        }
        let (gpu, cpu) = (try metrics("gpu"), try metrics("cpu"))
        for head in ["ep", "lp", "abmilp"] {
            let (g, c) = (try #require(gpu[head]), try #require(cpu[head]))
            #expect(g.count == 3 && c.count == 3)
            for (a, b) in zip(g, c) {
                #expect(abs(a["val_loss"]! - b["val_loss"]!) <= 1e-5 * abs(b["val_loss"]!), "\(head): val loss \(a["val_loss"]!) vs \(b["val_loss"]!)")
                #expect(abs(a["val_acc1"]! - b["val_acc1"]!) <= 100.0 * 2 / 256, "\(head): acc@1 \(a["val_acc1"]!) vs \(b["val_acc1"]!)")
            }
        }
    }

    @Test func gpuSelectionRunsOnlyTiledGEMMs() throws {
        let gpu = try gemmKernels(["VKPROBE_KERNELS": "gpu"])
        #expect(gpu == ["gemm_tiled"], "\(gpu)")
        let cpu = try gemmKernels(["VKPROBE_KERNELS": "cpu"])
        #expect(!cpu.isEmpty && !cpu.contains("gemm_tiled"), "\(cpu)")
    }
}
