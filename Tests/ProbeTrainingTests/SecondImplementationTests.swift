import Foundation
import ProbeData
import ProbeTestSupport
import SafeTensors
import Testing
@testable import ProbeTraining

/// A second Vulkan implementation beside lavapipe: SwiftShader (Debian's chromium-common ships it),
/// subgroup size 4, no 16-bit storage, texel buffers of at most 65536 elements. Each runs under its
/// own default kernel selection, as a user's would. `make test` sets VKPROBE_REQUIRE_SWIFTSHADER=1.
@Suite(.serialized) struct SecondImplementationTests {
    static let swiftShader = "/usr/lib/chromium/vk_swiftshader_icd.json"
    static let lavapipe = ["/usr/share/vulkan/icd.d/lvp_icd.x86_64.json", "/usr/share/vulkan/icd.d/lvp_icd.aarch64.json"]
        .first { FileManager.default.fileExists(atPath: $0) }

    static func available(sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        if FileManager.default.fileExists(atPath: swiftShader) && lavapipe != nil { return true }
        if ProcessInfo.processInfo.environment["VKPROBE_REQUIRE_SWIFTSHADER"] == "1" {
            Issue.record("SwiftShader or lavapipe is not installed (apt install chromium-common mesa-vulkan-drivers)", sourceLocation: sourceLocation)
        }
        return false
    }

    /// One driver only, under the validation layer.
    static func on(_ icd: String) -> [String: String] {
        ["VK_ICD_FILENAMES": icd, "VK_DRIVER_FILES": icd, "VKPROBE_VALIDATION": "1", "VKPROBE_KERNELS": "", "VKPROBE_DEVICE_PROFILE": ""]
    }

    /// `vkprobe train` of five heads on a synthetic token task gives SwiftShader exactly lavapipe's
    /// accuracies, epoch by epoch, and losses within the fp32 sums' reordering (subgroups of 4
    /// against 8 lanes reduce in another order: 1e-6 relative per epoch here). At lr 0.1: at lr 1.0
    /// CoCa's training is chaotic enough that any reordering (lavapipe's own GPU selection too)
    /// moves one validation sample by the second epoch.
    @Test func trainingGivesLavapipesAccuracies() throws {
        guard Self.available() else { return }
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (train, val) = try smallTask(dir)
        let heads = ["ep", "lp_gap", "abmilp", "cait", "coca"]
        let args = ["train", "--train-tokens", train, "--val-tokens", val, "--heads", heads.joined(separator: ","), "--ep-queries", "4",
                    "--lr", "0.1", "--warmup-epochs", "1", "--epochs", "4", "--batch-size", "32", "--seed", "3"]
        var metrics: [[String: [EpochMetrics]]] = []
        for (name, icd) in [("lavapipe", Self.lavapipe!), ("SwiftShader", Self.swiftShader)] {
            let out = dir.appendingPathComponent(name)
            let run = try runVkprobe(args + ["--output", out.path], environment: Self.on(icd))
            #expect(run.status == 0, "\(name): \(run.stderr)")
            #expect(!run.stderr.contains("validation"), "\(name): \(run.stderr)")
            let summary = try JSONDecoder().decode(RunSummary.self, from: Data(contentsOf: out.appendingPathComponent("summary.json")))
            #expect(summary.device?.contains(name == "lavapipe" ? "llvmpipe" : "SwiftShader") == true, "\(summary.device ?? "no device")")
            metrics.append(Dictionary(uniqueKeysWithValues: try heads.map { ($0, try metricsWithoutTime(out, $0)) }))
        }
        for head in heads {
            let (a, b) = (try #require(metrics[0][head]), try #require(metrics[1][head]))
            #expect(a.count == 4 && a.count == b.count)
            for (x, y) in zip(a, b) {
                #expect(x.val_acc1 == y.val_acc1 && x.val_acc5 == y.val_acc5, "\(head) epoch \(x.epoch): lavapipe \(x.val_acc1), SwiftShader \(y.val_acc1)")
                #expect(abs(x.train_loss - y.train_loss) <= 1e-5 * max(1, abs(x.train_loss)), "\(head) epoch \(x.epoch) loss \(x.train_loss) vs \(y.train_loss)")
            }
        }
    }

    /// The default `vkprobe extract` (no --precision: fp32 where the device has no 16-bit storage,
    /// and said) of a ViT with timm's names equals timm's tokens on SwiftShader, through its texel
    /// limits (texel views only where 65536 elements hold them).
    @Test func defaultExtractionEqualsTimm() throws {
        guard Self.available() else { return }
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let extraction = ExtractionTests()
        let (model, weights, g) = try extraction.tinyModel(dir)
        let shape = try g.entry("input.image").shape
        let imagesPath = dir.appendingPathComponent("images.safetensors").path
        try extraction.writeImages(imagesPath, try g.floats("input.image"), count: shape[0], size: shape[2], labels: [0, 1])
        let out = dir.appendingPathComponent("tokens")
        let r = try runVkprobe(["extract", "--model", model, "--weights", weights, "--images", imagesPath, "--output", out.path, "--blocks", "-1,norm"],
                               environment: Self.on(Self.swiftShader))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("SwiftShader") && r.stdout.contains("fp32"), "\(r.stdout)")
        for (tap, key) in [("block2", "expected.block.2"), ("norm", "expected.norm")] {
            let ds = try TokenDataset(path: out.appendingPathComponent(tap).path)
            let want = try g.floats(key)
            let D = 64, T = 65
            var wantCLS: [Float] = [], wantPatches: [Float] = []
            for i in 0..<2 { wantCLS += want[(i * T * D)..<(i * T * D + D)]; wantPatches += want[(i * T * D + D)..<((i + 1) * T * D)] }
            #expect(relativeError(try ds.gatherTokens([0, 1]), wantPatches) <= 1e-4, "\(tap) patches")
            #expect(relativeError(try ds.gatherCLS([0, 1]), wantCLS) <= 1e-4, "\(tap) [CLS]")
        }
    }
}
