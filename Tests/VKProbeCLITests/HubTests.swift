import Foundation
import ProbeBackbones
import ProbeTestSupport
import Testing

/// `--model NAME.TAG` without `--weights` fetches timm's checkpoint from the Hugging Face hub into
/// its shared cache. No network: `Tests/Fixtures/mini_hub.py` stands in for the hub on 127.0.0.1,
/// answering as it does (commit, SHA-256 etag, size, byte ranges), with a truncated transfer, a
/// corrupted one, a missing file and a gated repository.
@Suite(.serialized) struct HubTests {
    final class MiniHub {
        let process = Process()
        let port: Int
        let root: URL
        init(root: URL) throws {
            self.root = root
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/mini_hub.py")
            process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            process.arguments = [script.path, root.path]
            let out = Pipe()
            process.standardOutput = out
            // Not the test runner's own stderr: a server outliving a crashed test would hold it open.
            process.standardError = FileHandle.nullDevice
            try process.run()
            var line = Data()
            while let byte = try out.fileHandleForReading.read(upToCount: 1), !byte.isEmpty, byte != Data("\n".utf8) { line += byte }
            guard let p = Int(String(decoding: line, as: UTF8.self)) else { throw BackboneError("mini hub did not start") }
            port = p
        }
        /// SIGKILL: a child of the test runner may inherit a mask that blocks SIGTERM.
        func stop() { if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }
        deinit { stop() }
        var requests: [String] { ((try? String(contentsOf: root.appendingPathComponent("_requests.log"), encoding: .utf8)) ?? "").split(separator: "\n").map(String.init) }
    }

    @Test func fetchesCachesVerifiesAndResumes() throws {
        let dir = try temporaryDirectory("hub")
        let root = dir.appendingPathComponent("hub-root")
        let repo = "timm/vit_tiny_patch16_224.augreg_in21k"
        // A random ViT-Ti/16 under timm's name (22 MiB): the hub's file.
        let weights = ViTWeights.random(try ViTRegistry.config("vit_tiny_patch16_224"), seed: 2)
        for name in [repo, "timm/vit_tiny_patch16_224.gated"] {
            try FileManager.default.createDirectory(at: root.appendingPathComponent(name), withIntermediateDirectories: true)
            try weights.write(to: root.appendingPathComponent("\(name)/model.safetensors").path)
        }
        let hub = try MiniHub(root: root)
        defer { hub.stop() }   // not left to deinit: the server must not outlive the test
        var w = [Float](repeating: 0, count: 2 * 3 * 224 * 224)
        for i in w.indices { w[i] = Float((i * 7919) % 1000) / 500 - 1 }
        let images = try writeImages(dir.appendingPathComponent("images.safetensors"), w, [2, 3, 224, 224])
        func extract(_ model: String, _ out: String, _ env: [String: String]) throws -> CLIRun {
            try runVkprobe(["extract", "--model", model, "--images", images, "--precision", "fp32", "--blocks", "-1",
                            "--output", dir.appendingPathComponent(out).path], environment: env)
        }
        let hfHome = dir.appendingPathComponent("hf")
        let env = ["HF_ENDPOINT": "http://127.0.0.1:\(hub.port)", "HF_HOME": hfHome.path]
        // Fetched into huggingface_hub's layout, verified, run.
        let first = try extract("vit_tiny_patch16_224.augreg_in21k", "a", env)
        #expect(first.status == 0, "\(first.stderr)")
        let folder = hfHome.appendingPathComponent("hub/models--timm--vit_tiny_patch16_224.augreg_in21k")
        let blobs = try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("blobs").path)
        #expect(blobs.count == 1 && blobs[0].count == 64, "\(blobs)")
        let commit = try String(contentsOf: folder.appendingPathComponent("refs/main"), encoding: .utf8)
        let link = try FileManager.default.destinationOfSymbolicLink(atPath: folder.appendingPathComponent("snapshots/\(commit)/model.safetensors").path)
        #expect(link == "../../blobs/\(blobs[0])")
        // A second run offline reads the cache and asks nothing of the hub.
        let asked = hub.requests.count
        let offline = try extract("vit_tiny_patch16_224.augreg_in21k", "b", env.merging(["HF_HUB_OFFLINE": "1"]) { $1 })
        #expect(offline.status == 0 && hub.requests.count == asked, "\(offline.stderr)")
        // Offline with nothing cached: the missing file named.
        let none = try extract("vit_tiny_patch16_224.augreg_in21k", "c", ["HF_HOME": dir.appendingPathComponent("empty").path, "HF_HUB_OFFLINE": "1"])
        #expect(none.status != 0 && none.stderr.contains("HF_HUB_OFFLINE") && none.stderr.contains("model.safetensors"), "\(none.stderr)")
        // A file the hub does not have.
        let missing = try extract("vit_tiny_patch16_224.nothere", "d", env)
        #expect(missing.status != 0 && missing.stderr.contains("not found (404)"), "\(missing.stderr)")
        // A truncated transfer: kept as .incomplete, resumed with a range request by the next run.
        let env2 = ["HF_ENDPOINT": env["HF_ENDPOINT"]!, "HF_HOME": dir.appendingPathComponent("hf2").path]
        FileManager.default.createFile(atPath: root.appendingPathComponent("_truncate").path, contents: nil)
        let cut = try extract("vit_tiny_patch16_224.augreg_in21k", "e", env2)
        #expect(cut.status != 0 && cut.stderr.contains("resumes"), "\(cut.stderr)")
        let blobs2 = dir.appendingPathComponent("hf2/hub/models--timm--vit_tiny_patch16_224.augreg_in21k/blobs")
        #expect(try FileManager.default.contentsOfDirectory(atPath: blobs2.path).allSatisfy { $0.hasSuffix(".incomplete") })
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("hf2/hub/models--timm--vit_tiny_patch16_224.augreg_in21k/snapshots").path))
        let resumed = try extract("vit_tiny_patch16_224.augreg_in21k", "e", env2)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(hub.requests.contains { $0.hasPrefix("GET") && $0.contains("range=bytes=") }, "\(hub.requests)")
        // A corrupted transfer: refused by its SHA-256, nothing kept; the next run fetches it anew.
        let env3 = ["HF_ENDPOINT": env["HF_ENDPOINT"]!, "HF_HOME": dir.appendingPathComponent("hf3").path]
        FileManager.default.createFile(atPath: root.appendingPathComponent("_corrupt").path, contents: nil)
        let bad = try extract("vit_tiny_patch16_224.augreg_in21k", "f", env3)
        #expect(bad.status != 0 && bad.stderr.contains("SHA-256") && bad.stderr.contains("does not match"), "\(bad.stderr)")
        let blobs3 = dir.appendingPathComponent("hf3/hub/models--timm--vit_tiny_patch16_224.augreg_in21k/blobs")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: blobs3.path)) ?? []).isEmpty)
        let again = try extract("vit_tiny_patch16_224.augreg_in21k", "f", env3)
        #expect(again.status == 0, "\(again.stderr)")
        // A gated repository: refused without HF_TOKEN, fetched with it.
        let gated = try extract("vit_tiny_patch16_224.gated", "g", env)
        #expect(gated.status != 0 && gated.stderr.contains("HF_TOKEN"), "\(gated.stderr)")
        let token = try extract("vit_tiny_patch16_224.gated", "g", env.merging(["HF_TOKEN": "secret"]) { $1 })
        #expect(token.status == 0, "\(token.stderr)")
        // The same tokens whichever way the checkpoint arrived.
        let direct = try runVkprobe(["extract", "--model", "vit_tiny_patch16_224", "--weights", root.appendingPathComponent("\(repo)/model.safetensors").path,
                                     "--images", images, "--precision", "fp32", "--blocks", "-1", "--output", dir.appendingPathComponent("h").path])
        #expect(direct.status == 0)
        let a = try SafeTensorsFile(path: dir.appendingPathComponent("a/block11/shard-00000.safetensors").path).floats("tokens")
        let h = try SafeTensorsFile(path: dir.appendingPathComponent("h/block11/shard-00000.safetensors").path).floats("tokens")
        #expect(a == h && a.count == 2 * 196 * 192)
        // A name without a tag cannot be fetched: said plainly.
        let untagged = try runVkprobe(["extract", "--model", "vit_tiny_patch16_224", "--images", images, "--output", dir.appendingPathComponent("i").path], environment: env)
        #expect(untagged.status != 0 && untagged.stderr.contains("pretrained tag"), "\(untagged.stderr)")
    }

    func writeImages(_ url: URL, _ values: [Float], _ shape: [Int]) throws -> String {
        var w = SafeTensorsWriterShim()
        w.add("images", values, shape)
        w.addLabels("labels", [Int64](repeating: 0, count: shape[0]))
        try w.write(url.path)
        return url.path
    }
}

import SafeTensors
/// SafeTensorsWriter under the names this file uses.
struct SafeTensorsWriterShim {
    var w = SafeTensorsWriter()
    mutating func add(_ n: String, _ v: [Float], _ s: [Int]) { w.add(n, v, shape: s) }
    mutating func addLabels(_ n: String, _ v: [Int64]) { w.add(n, int64: v, shape: [v.count]) }
    func write(_ path: String) throws { try w.write(to: path) }
}
