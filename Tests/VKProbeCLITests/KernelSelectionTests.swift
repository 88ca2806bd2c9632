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

    @Test func gpuSelectionRunsOnlyTiledGEMMs() throws {
        let gpu = try gemmKernels(["VKPROBE_KERNELS": "gpu"])
        #expect(gpu == ["gemm_tiled"], "\(gpu)")
        let cpu = try gemmKernels(["VKPROBE_KERNELS": "cpu"])
        #expect(!cpu.isEmpty && !cpu.contains("gemm_tiled"), "\(cpu)")
    }
}
