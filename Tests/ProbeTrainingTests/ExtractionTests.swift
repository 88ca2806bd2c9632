import Foundation
import ProbeData
import ProbeTestSupport
import SafeTensors
import Testing

/// `vkprobe extract` then `vkprobe train`, as a user runs them, on a tiny ViT with timm's names
/// (the MAE golden's random weights) and a handful of images.
@Suite(.serialized) struct ExtractionTests {
    /// The MAE golden as a checkpoint (timm names) and its constructor arguments as a JSON file.
    func tinyModel(_ dir: URL) throws -> (model: String, weights: String, golden: SafeTensorsFile) {
        let g = try SafeTensorsFile(path: goldensDirectory.appendingPathComponent(try #require(goldenFiles { $0 == .vit }.first { $0.hasPrefix("vit_mae") })).path)
        var w = SafeTensorsWriter()
        for n in g.names where !n.hasPrefix("expected.") && !n.hasPrefix("input.") { w.add(n, try g.floats(n), shape: try g.entry(n).shape) }
        let weights = dir.appendingPathComponent("model.safetensors").path
        try w.write(to: weights)
        let model = dir.appendingPathComponent("vit_tiny_mae.json").path
        try g.metadata["config"]!.write(toFile: model, atomically: true, encoding: .utf8)
        return (model, weights, g)
    }

    func writeImages(_ path: String, _ pixels: [Float], count: Int, size: Int, labels: [Int]) throws {
        var w = SafeTensorsWriter()
        w.add("images", pixels, shape: [count, 3, size, size])
        w.add("labels", int64: labels.map(Int64.init), shape: [count])
        try w.write(to: path)
    }

    /// The extracted token files hold exactly timm's tokens: [CLS] in `cls`, the patches in
    /// `tokens`, for every block asked for (fp32).
    @Test func extractedTokensAreTimmsTokens() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (model, weights, g) = try tinyModel(dir)
        let shape = try g.entry("input.image").shape
        let images = dir.appendingPathComponent("images.safetensors").path
        try writeImages(images, try g.floats("input.image"), count: shape[0], size: shape[2], labels: [0, 1])
        let out = dir.appendingPathComponent("tokens")
        let r = try runVkprobe(["extract", "--model", model, "--weights", weights, "--images", images, "--output", out.path,
                                "--blocks", "0,-1,norm", "--precision", "fp32"])
        #expect(r.status == 0, "\(r.stderr)")
        // The extraction says where its time went.
        let times = r.stdout.split(separator: "\n").first { $0.hasPrefix("time: waiting for decoded images") }
        #expect(times != nil && times!.contains("forward and download") && times!.contains("writing shards"), "\(r.stdout)")
        for (tap, key) in [("block0", "expected.block.0"), ("block2", "expected.block.2"), ("norm", "expected.norm")] {
            let ds = try TokenDataset(path: out.appendingPathComponent(tap).path)
            let want = try g.floats(key)   // (2, 65, 64): [CLS] then 64 patches
            let D = 64, T = 65
            var wantCLS: [Float] = [], wantPatches: [Float] = []
            for i in 0..<2 { wantCLS += want[(i * T * D)..<(i * T * D + D)]; wantPatches += want[(i * T * D + D)..<((i + 1) * T * D)] }
            #expect(ds.tokens == 64 && ds.dim == 64 && ds.hasCLS && ds.labels == [0, 1])
            #expect(ds.info?.tap == tap && ds.info?.cls == true && ds.info?.gridH == 8)
            #expect(relativeError(try ds.gatherTokens([0, 1]), wantPatches) <= 1e-4, "\(tap) patches")
            #expect(relativeError(try ds.gatherCLS([0, 1]), wantCLS) <= 1e-4, "\(tap) [CLS]")
        }
    }

    /// Two blocks from one pass, killed after the first shard and resumed (completed shards kept,
    /// the same tokens as an uninterrupted extraction), then heads trained on the shards.
    @Test func extractResumeThenTrain() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (model, weights, _) = try tinyModel(dir)
        let n = 24
        let pixels = randomValues(n * 3 * 64 * 64, seed: 3, lo: -2, hi: 2).map { Float($0) }
        let images = dir.appendingPathComponent("images.safetensors").path
        try writeImages(images, pixels, count: n, size: 64, labels: (0..<n).map { $0 % 4 })
        let args = ["extract", "--model", model, "--weights", weights, "--images", images, "--blocks", "-1,-2", "--batch-size", "4", "--shard-size", "8"]
        let whole = dir.appendingPathComponent("whole"), killed = dir.appendingPathComponent("killed")
        #expect(try runVkprobe(args + ["--output", whole.path]).status == 0)
        let interrupted = try runVkprobe(args + ["--output", killed.path], environment: ["VKPROBE_KILL_AT": "extract-shard:*:0"])
        #expect(interrupted.status != 0)
        #expect(FileManager.default.fileExists(atPath: killed.appendingPathComponent("block2/shard-00000.safetensors").path))
        #expect(!FileManager.default.fileExists(atPath: killed.appendingPathComponent("block2/shard-00001.safetensors").path))
        let resumed = try runVkprobe(args + ["--output", killed.path])
        #expect(resumed.status == 0 && resumed.stdout.contains("1 of 3 shards already extracted"), "\(resumed.stdout)\(resumed.stderr)")
        for tap in ["block1", "block2"] {
            let a = try TokenDataset(path: whole.appendingPathComponent(tap).path), b = try TokenDataset(path: killed.appendingPathComponent(tap).path)
            #expect(a.files.count == 3 && a.samples == n && a.labels == b.labels)
            #expect(try a.gatherTokens(Array(0..<n)) == b.gatherTokens(Array(0..<n)), "\(tap) tokens after resume")
        }
        // Another model's extraction into the same directory is refused.
        let other = try runVkprobe(args.map { $0 == "-1,-2" ? "-1" : $0 } + ["--output", killed.path])
        #expect(other.status != 0 && other.stderr.contains("taps") && other.stderr.contains("another extraction"), "\(other.stderr)")
        // Train on the shards (the set read as one dataset).
        let train = try runVkprobe(["train", "--train-tokens", whole.appendingPathComponent("block1").path, "--val-tokens",
                                    whole.appendingPathComponent("block1").path, "--heads", "ep,lp,lp_gap", "--ep-queries", "4",
                                    "--epochs", "2", "--batch-size", "8", "--lr", "0.1", "--warmup-epochs", "1",
                                    "--output", dir.appendingPathComponent("run").path])
        #expect(train.status == 0, "\(train.stderr)")
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("run/summary.json"))) as? [String: Any]
        #expect((summary?["heads"] as? [String: Any])?.keys.sorted() == ["ep", "lp", "lp_gap"])
    }

    /// `mpirun -np 2 vkprobe extract`: each rank writes every other shard; together the very
    /// files of a single-process extraction. A rank killed after its first shard stops the job;
    /// one process then extracts only what is missing, to the same tokens.
    @Test func shardedOverTwoProcesses() throws {
        guard mpiAvailable() else { return }
        let dir = try temporaryDirectory()
        let (model, weights, _) = try tinyModel(dir)
        let n = 40
        let pixels = randomValues(n * 3 * 64 * 64, seed: 5, lo: -2, hi: 2).map { Float($0) }
        let images = dir.appendingPathComponent("images.safetensors").path
        try writeImages(images, pixels, count: n, size: 64, labels: (0..<n).map { $0 % 4 })
        let args = ["extract", "--model", model, "--weights", weights, "--images", images, "--blocks", "-1", "--batch-size", "4", "--shard-size", "8"]
        let single = dir.appendingPathComponent("single"), two = dir.appendingPathComponent("two"), killed = dir.appendingPathComponent("killed")
        #expect(try runVkprobe(args + ["--output", single.path]).status == 0)
        let r = try runVkprobeMPI(2, args + ["--output", two.path])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("[rank 0/2]") && r.stdout.contains("[rank 1/2]"))
        func shardBytes(_ d: URL, _ k: Int) throws -> Data { try Data(contentsOf: d.appendingPathComponent(String(format: "block2/shard-%05d.safetensors", k))) }
        for k in 0..<5 { #expect(try shardBytes(single, k) == shardBytes(two, k), "shard \(k) differs from the single-process one") }
        let a = try TokenDataset(path: single.appendingPathComponent("block2").path), b = try TokenDataset(path: two.appendingPathComponent("block2").path)
        let (ta, tb) = (try a.gatherTokens(Array(0..<n)), try b.gatherTokens(Array(0..<n)))
        #expect(b.samples == n && b.labels == a.labels && ta == tb)
        // Rank 1 killed after its first shard (shard 1): the job stops; one process completes it.
        let interrupted = try runVkprobeMPI(2, args + ["--output", killed.path], environment: ["VKPROBE_KILL_AT": "extract-shard:*:1", "VKPROBE_KILL_RANK": "1"])
        #expect(interrupted.status != 0)
        #expect(FileManager.default.fileExists(atPath: killed.appendingPathComponent("block2/shard-00001.safetensors").path))
        #expect(!FileManager.default.fileExists(atPath: killed.appendingPathComponent("block2/shard-00003.safetensors").path))
        let resumed = try runVkprobe(args + ["--output", killed.path])
        #expect(resumed.status == 0 && resumed.stdout.contains("shards already extracted"), "\(resumed.stdout)\(resumed.stderr)")
        for k in 0..<5 { #expect(try shardBytes(single, k) == shardBytes(killed, k), "shard \(k) after the restart") }
    }
}
