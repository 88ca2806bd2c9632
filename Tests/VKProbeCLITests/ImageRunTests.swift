import Foundation
import ProbeBackbones
import ProbeData
import ProbeTestSupport
import SafeTensors
import Testing

/// The whole job as a user runs it, on a small ImageFolder with the issue's bad files and a tiny
/// random ViT (under the validation layer: any message fails).
@Suite(.serialized) struct ImageRunTests {
    struct Fixture {
        let root: URL, data: URL, model: String, weights: String
        init() throws {
            root = try temporaryDirectory("image-run")
            data = root.appendingPathComponent("data")
            try writeImageFolder(data, splits: [("train", 8), ("val", 4)], classes: ["a", "b", "c"], size: 40, seed: 3)
            try addBadFiles(to: data.appendingPathComponent("train/a"))
            let json = #"{"patch_size": 8, "embed_dim": 32, "depth": 2, "num_heads": 2, "img_size": 32, "init_values": 1e-5}"#
            model = root.appendingPathComponent("tiny-vit.json").path
            try json.write(toFile: model, atomically: true, encoding: .utf8)
            weights = root.appendingPathComponent("tiny-vit.safetensors").path
            try ViTWeights.random(try ViTConfig.fromTimmArguments(json), seed: 4).write(to: weights)
        }
        func trainArguments(_ extra: [String], output: String) -> [String] {
            ["train", "--validation", "--model", model, "--weights", weights, "--data", data.path, "--image-size", "32",
             "--heads", "ep,lp", "--ep-queries", "4", "--epochs", "2", "--global-batch-size", "8", "--warmup-epochs", "1",
             "--workers", "2", "--max-unreadable", "3", "--output", root.appendingPathComponent(output).path] + extra
        }
        func train(_ extra: [String], output: String) throws -> CLIRun { try runVkprobe(trainArguments(extra, output: output)) }
    }
    static let unreadable = ["empty.jpg", "text.jpg", "truncated.jpg"]

    @Test func backboneEveryStepSkipsBadFilesByName() throws {
        let f = try Fixture()
        let run = try f.train(["--profile", "1"], output: "online")
        #expect(run.status == 0, "\(run.stderr)")
        // The profile of one step: the backbone's and the heads' kernels, and its JSON.
        #expect(run.stdout.contains("profile of 1 training step") && run.stdout.contains("between dispatches"), "\(run.stdout)")
        let profile = try JSONSerialization.jsonObject(with: Data(contentsOf: f.root.appendingPathComponent("online/profile.json"))) as? [String: Any]
        let ops = ((profile?["rows"] as? [[String: Any]]) ?? []).compactMap { $0["op"] as? String }
        // (The ViT's attention runs as GEMM → softmax → GEMM on CPU devices: its LayerNorms mark it.)
        #expect(ops.contains { $0.hasPrefix("normalizeRGB8") } && ops.contains { $0.hasPrefix("layerNorm") } && ops.contains { $0.hasPrefix("crossEntropy") },
                "\(ops)")
        for name in Self.unreadable {
            let path = "\(f.data.path)/train/a/\(name)"
            #expect(run.stdout.contains("skipped \(path):"), "\(name) not reported:\n\(run.stdout)")
            #expect(!run.stdout.contains("skipped \(path): \(path):") && !run.stdout.contains("skipped \(path): \(name):"), "the path said twice:\n\(run.stdout)")
        }
        #expect(run.stdout.contains("images: val 0 of 12 unreadable (0.00%); train 3 of 29 unreadable (10.34%) (named above; left out)"), "\(run.stdout)")
        let reports = (try JSONSerialization.jsonObject(with: Data(contentsOf: f.root.appendingPathComponent("online/summary.json"))) as? [String: Any])?["unreadable"] as? [String: [String: Any]]
        #expect(reports?["train"]?["unreadable"] as? Int == 3 && reports?["train"]?["images"] as? Int == 29 && reports?["val"]?["unreadable"] as? Int == 0)
        #expect(!run.stdout.contains("cmyk.jpg:") && !run.stdout.contains("one-pixel.jpg:"), "CMYK and 1×1 images load as with PIL")
        #expect(!run.stderr.contains("alidation"), "\(run.stderr)")
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: f.root.appendingPathComponent("online/summary.json"))) as? [String: Any]
        #expect((summary?["heads"] as? [String: Any])?.keys.sorted() == ["ep", "lp"])
        // The maps of the trained EP head over the val images.
        let maps = try runVkprobe(["maps", "--validation", "--run", f.root.appendingPathComponent("online").path, "--images", f.data.appendingPathComponent("val").path,
                                   "--groups", "2", "--output", f.root.appendingPathComponent("maps").path, "--log-dir", f.root.appendingPathComponent("tb").path])
        #expect(maps.status == 0, "\(maps.stderr)")
        // The contact sheet also went to TensorBoard as an image summary (TensorBoardTests reads such files back).
        let events = try FileManager.default.contentsOfDirectory(atPath: f.root.appendingPathComponent("tb").path).filter { $0.hasPrefix("events.out.tfevents.") }
        #expect(events.count == 1 && maps.stdout.contains("TensorBoard image maps/ep"), "\(events) \(maps.stdout)")
        #expect(!maps.stderr.contains("alidation"), "\(maps.stderr)")
        let sheet = try ImageDecoder.decode(try Data(contentsOf: f.root.appendingPathComponent("maps/contact-sheet.png")), name: "sheet")
        #expect(sheet.width == 4 * 2 * 224 + 9 * 4 && sheet.height == 3 * 224 + 4 * 4)   // 12 images, 4 per row, image + overlay each
        let raw = try SafeTensorsFile(path: f.root.appendingPathComponent("maps/maps.safetensors").path)
        #expect(raw.entries["attention"]?.shape == [12, 4, 4, 4])
        let a = try raw.floats("attention")
        for row in stride(from: 0, to: a.count, by: 16) {
            let s = a[row..<(row + 16)].reduce(0, +)
            #expect(abs(s - 1) < 1e-5, "each query's map is a softmax over the 16 patches (sum \(s))")
        }
        let pngs = try FileManager.default.contentsOfDirectory(atPath: f.root.appendingPathComponent("maps").path).filter { $0.hasSuffix("-maps.png") }
        #expect(pngs.count == 12)
        // Another head's checkpoint drawn over the same run (--head-checkpoint), e.g. one trained elsewhere.
        let other = try runVkprobe(["maps", "--run", f.root.appendingPathComponent("online").path, "--images", f.data.appendingPathComponent("val").path,
                                    "--head-checkpoint", f.root.appendingPathComponent("online/ep/checkpoint-last.safetensors").path,
                                    "--output", f.root.appendingPathComponent("maps-other").path])
        #expect(other.status == 0, "\(other.stderr)")
        #expect(FileManager.default.fileExists(atPath: f.root.appendingPathComponent("maps-other/contact-sheet.png").path))
        // The report finds both sheets: the one beside the run, and the one elsewhere through the run's maps.json.
        let recorded = try String(contentsOf: f.root.appendingPathComponent("online/maps.json"), encoding: .utf8)
        #expect(recorded.contains("maps-other/contact-sheet.png") && !recorded.contains("\"\(f.root.path)/maps/contact-sheet.png\""), "\(recorded)")
        let report = try runVkprobe(["report", f.root.appendingPathComponent("online").path, "--output", f.root.appendingPathComponent("report").path])
        #expect(report.status == 0, "\(report.stderr)")
        let html = try String(contentsOf: f.root.appendingPathComponent("report/index.html"), encoding: .utf8)
        #expect(html.contains("maps-other/contact-sheet.png") && html.contains("/maps/contact-sheet.png"), "the report names both contact sheets")
    }

    /// The newer families through the whole job — train on images, then the EP maps over them —
    /// with their registry entries at a small width: RoPE with [CLS] (EVA-02), registers and RoPE
    /// (DINOv3), no [CLS] and RMSNorm (AIMv2), Hiera's pooled stages (a 2×2 grid of final tokens).
    @Test(arguments: [("eva02_base_patch14_224", 28), ("vit_base_patch16_dinov3", 32), ("aimv2_large_patch14_224", 28), ("hiera_base_224", 64)])
    func newFamiliesTrainAndDrawMaps(_ model: String, _ size: Int) throws {
        let f = try Fixture()
        let json = model.hasPrefix("hiera")
            ? #"{"model": "\#(model)", "embed_dim": 8, "num_heads": 1, "stages": [1, 1, 1, 1], "img_size": \#(size)}"#
            : #"{"model": "\#(model)", "embed_dim": 32, "depth": 2, "num_heads": 2, "img_size": \#(size)}"#
        let config = f.root.appendingPathComponent("\(model).json").path
        try json.write(toFile: config, atomically: true, encoding: .utf8)
        let weights = f.root.appendingPathComponent("\(model).safetensors").path
        try ViTWeights.random(try ViTConfig.fromTimmArguments(json), seed: 5).write(to: weights)
        let run = try runVkprobe(["train", "--validation", "--model", config, "--weights", weights, "--data", f.data.path, "--image-size", "\(size)",
                                  "--heads", "ep,lp_gap", "--ep-queries", "4", "--epochs", "1", "--global-batch-size", "8", "--warmup-epochs", "0",
                                  "--workers", "2", "--max-unreadable", "3", "--output", f.root.appendingPathComponent(model).path])
        #expect(run.status == 0, "\(model): \(run.stderr)")
        let maps = try runVkprobe(["maps", "--validation", "--run", f.root.appendingPathComponent(model).path, "--images", f.data.appendingPathComponent("val").path,
                                   "--groups", "2", "--output", f.root.appendingPathComponent("\(model)-maps").path])
        #expect(maps.status == 0, "\(model): \(maps.stderr)")
        #expect(FileManager.default.fileExists(atPath: f.root.appendingPathComponent("\(model)-maps/contact-sheet.png").path))
    }

    @Test func strictFailsUpFrontListingEveryBadFile() throws {
        let f = try Fixture()
        let run = try f.train(["--strict"], output: "strict")
        #expect(run.status == 1)
        for name in Self.unreadable { #expect(run.stderr.contains("/train/a/\(name)"), "\(name) not listed:\n\(run.stderr)") }
        #expect(run.stderr.contains("3 of 29 images"))
        #expect(!FileManager.default.fileExists(atPath: f.root.appendingPathComponent("strict/summary.json").path))
    }

    @Test func cachedViewsTrainOnTokenShards() throws {
        let f = try Fixture()
        let run = try f.train(["--cache-tokens", "--views", "2"], output: "cached")
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("× 2 cached views"), "\(run.stdout)")
        let shards = f.root.appendingPathComponent("cached/tokens/train/block1")
        let file = try SafeTensorsFile(path: shards.appendingPathComponent("shard-00000.safetensors").path)
        #expect(file.entries["tokens"]?.shape == [2 * 26, 16, 32], "26 readable training images × 2 views, 4×4 patches, width 32")
        #expect(file.metadata["vkprobe.tokens"]?.contains("\"views\":2") == true)
        // Missing class images: a clear error naming the class.
        for name in try FileManager.default.contentsOfDirectory(atPath: f.data.appendingPathComponent("val/c").path) {
            try FileManager.default.removeItem(at: f.data.appendingPathComponent("val/c").appendingPathComponent(name))
        }
        let empty = try f.train([], output: "empty-class")
        #expect(empty.status == 1 && empty.stderr.contains("for the classes c"), "\(empty.stderr)")
    }

    /// Under `mpirun -np 2`, the backbone every step (each process runs its slice of every batch,
    /// augmented as one process would, unreadable files skipped where they fall, through its own
    /// backbone) or once into a token cache (each process extracts its shards of it): the run
    /// equals one process's.
    @Test(arguments: [[], ["--cache-tokens", "--views", "2"]])
    func overTwoProcesses(_ extra: [String]) throws {
        guard mpiAvailable() else { return }
        let f = try Fixture()
        let one = try f.train(extra, output: "one")
        #expect(one.status == 0, "\(one.stderr)")
        let two = try runVkprobeMPI(2, f.trainArguments(extra, output: "two"))
        #expect(two.status == 0, "\(two.stdout)\(two.stderr)")
        #expect(!two.stderr.contains("alidation"), "\(two.stderr)")
        if extra.contains("--cache-tokens") {
            #expect(two.stdout.contains("[rank 1/2]") && two.stdout.contains("[rank 0/2]"), "both processes extract: \(two.stdout)")
            #expect(FileManager.default.fileExists(atPath: f.root.appendingPathComponent("two/tokens/train/extract.json").path))
        }
        for head in ["ep", "lp"] {
            let a = try String(contentsOf: f.root.appendingPathComponent("one/\(head)/metrics.jsonl"), encoding: .utf8).split(separator: "\n")
            let b = try String(contentsOf: f.root.appendingPathComponent("two/\(head)/metrics.jsonl"), encoding: .utf8).split(separator: "\n")
            #expect(a.count == 2 && b.count == 2)
            for (x, y) in zip(a, b) {
                let p = try JSONSerialization.jsonObject(with: Data(x.utf8)) as! [String: Double]
                let q = try JSONSerialization.jsonObject(with: Data(y.utf8)) as! [String: Double]
                for key in ["train_acc1", "val_acc1", "val_acc5"] { #expect(p[key] == q[key], "\(head) \(key): \(p[key]!) vs \(q[key]!)") }
                // Losses: the order of fp32 sums differs (per-process partial sums).
                for key in ["train_loss", "val_loss"] { #expect(abs(p[key]! - q[key]!) <= 1e-5 * abs(p[key]!), "\(head) \(key): \(p[key]!) vs \(q[key]!)") }
            }
        }
    }

    /// The issue's folder: 17 valid images (and an 18th libjpeg decodes through a warning) and 6 hostile ones (a 12-bit JPEG, JPEG and PNG
    /// headers declaring 65500² and 60000² pixels, a GIF named .jpg, a truncated PNG, a zero-width
    /// PNG) and a symlink loop. With one worker and with two, every valid image is extracted, each
    /// hostile one is named with its reason, the loop is reported, and the run fails by default
    /// (6 of 23 is past 1%) naming the count, the share and the files.
    @Test func hostileFolderLosesNoValidImage() throws {
        let f = try Fixture()
        let dir = f.root.appendingPathComponent("hostile")
        try writeImageFolder(dir, splits: [("val", 6)], classes: ["a", "b", "c"], size: 40, seed: 8)
        let extra = dir.appendingPathComponent("val/c/zz-extra.jpg")   // 17 valid: 18 written, one replaced below
        try ImageEncoder.jpeg(classImage(2, width: 33, height: 41, seed: 2)).write(to: extra)
        try FileManager.default.removeItem(at: dir.appendingPathComponent("val/c/0005.jpg"))
        try FileManager.default.removeItem(at: dir.appendingPathComponent("val/c/0004.jpg"))
        let hostile = try writeHostileImages(to: dir.appendingPathComponent("val/a"))
        // An 18th valid image that libjpeg decodes through a warning (extraneous bytes before DQT), as PIL does.
        var warned = [UInt8](try ImageEncoder.jpeg(classImage(1, width: 36, height: 28, seed: 6)))
        let dqt = warned.indices.first { warned[$0] == 0xFF && warned[$0 + 1] == 0xDB }!
        warned.insert(contentsOf: [0, 0, 0, 0, 0], at: dqt)
        try Data(warned).write(to: dir.appendingPathComponent("val/b/warned.jpg"))
        try FileManager.default.createSymbolicLink(atPath: dir.appendingPathComponent("val/b/loop").path, withDestinationPath: ".")
        for workers in ["1", "2"] {
            let out = f.root.appendingPathComponent("hostile-out-\(workers)").path
            let args = ["extract", "--validation", "--model", f.model, "--weights", f.weights, "--data", dir.path, "--split", "val",
                        "--image-size", "32", "--workers", workers, "--output", out]
            let strict = try runVkprobe(args)
            #expect(strict.status == 1)
            #expect(strict.stderr.contains("6 of its 24 images are unreadable (25.00% of the split"), "\(strict.stderr)")
            #expect(strict.stderr.contains("more than --max-unreadable 1% allows (0)"), "\(strict.stderr)")
            try? FileManager.default.removeItem(atPath: out)
            let run = try runVkprobe(args + ["--max-unreadable", "30%"])
            #expect(run.status == 0, "\(run.stderr)")
            for (name, reason) in hostile { #expect(run.stdout.contains("skipped \(dir.path)/val/a/\(name): ") && run.stdout.contains(reason), "\(name): \(reason) not reported:\n\(run.stdout)") }
            #expect(run.stdout.contains("val/b/loop: a symlink loop"), "\(run.stdout)")
            #expect(run.stdout.contains("images: 6 of 24 unreadable (25.00%), 1 decoded with warnings"), "\(run.stdout)")
            #expect(run.stdout.contains("decoded through a libjpeg warning (as PIL does): \(dir.path)/val/b/warned.jpg: Corrupt JPEG data: 5 extraneous bytes before marker 0xdb"), "\(run.stdout)")
            let shard = try SafeTensorsFile(path: out + "/block1/shard-00000.safetensors")
            #expect(shard.entries["tokens"]?.shape.first == 18, "all 18 valid images extracted with \(workers) worker(s)")
            let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/extract.json"))) as? [String: Any]
            let u = manifest?["unreadable"] as? [String: Any]
            #expect(u?["unreadable"] as? Int == 6 && u?["images"] as? Int == 24 && u?["decoded_with_warnings"] as? Int == 1 && (u?["first"] as? [String])?.count == 6)
        }
    }

    /// `train --cache-tokens` killed (SIGKILL) while the cache's training split is extracted
    /// (after its first shard, and with a shard written but not yet renamed) resumes with
    /// `--resume`, and killed after the first epoch's training state resumes with
    /// `--auto-resume`, to the metrics and summary of an uninterrupted run. `--resume` with
    /// nothing to continue is refused; `--auto-resume` then starts.
    @Test func killedDuringTheCacheOrTrainingResumesToTheSameRun() throws {
        let f = try Fixture()
        let args = ["--cache-tokens", "--epochs", "3"]
        let whole = try f.train(args, output: "whole")
        #expect(whole.status == 0, "\(whole.stderr)")
        func metrics(_ run: String, _ head: String) throws -> [[String: Double]] {
            try String(contentsOf: f.root.appendingPathComponent("\(run)/\(head)/metrics.jsonl"), encoding: .utf8).split(separator: "\n").map { line in
                var m = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Double]
                m["seconds"] = nil   // wall-clock
                return m
            }
        }
        func summary(_ run: String) throws -> [String: Any] {
            var o = try JSONSerialization.jsonObject(with: Data(contentsOf: f.root.appendingPathComponent("\(run)/summary.json"))) as! [String: Any]
            var heads = o["heads"] as! [String: [String: Any]]
            for k in heads.keys { heads[k]!["train_images_per_s"] = nil }
            o["heads"] = heads
            o["peak_device_memory_bytes"] = nil   // this process's, not the run's
            return o
        }
        let fresh = try f.train(args + ["--resume"], output: "nothing")
        #expect(fresh.status == 1 && fresh.stderr.contains("--resume: nothing to continue"), "\(fresh.stderr)")
        for (kill, flag) in [("extract-shard:*:0", "--resume"), ("extract-temp:*:0", "--resume"), ("state:*:0", "--auto-resume")] {
            let out = "killed-" + kill.replacingOccurrences(of: ":", with: "-").replacingOccurrences(of: "*", with: "all")
            let killed = try runVkprobe(f.trainArguments(args, output: out), environment: ["VKPROBE_KILL_AT": kill])
            #expect(killed.status != 0, "not killed at \(kill)")
            let resumed = try f.train(args + [flag], output: out)
            #expect(resumed.status == 0, "\(kill): \(resumed.stderr)")
            if kill.hasPrefix("extract") {
                #expect(resumed.stdout.contains("no epoch completed yet"), "\(resumed.stdout)")
                #expect(resumed.stdout.contains("1 of 1 shards already extracted") || kill.hasPrefix("extract-temp"), "\(resumed.stdout)")
            } else {
                #expect(resumed.stdout.contains("resuming: ep after epoch 1, lp from epoch 1 (no completed epoch)"), "\(resumed.stdout)")
            }
            for head in ["ep", "lp"] {
                let a = try metrics(out, head), b = try metrics("whole", head)
                #expect(a == b, "\(head) after a kill at \(kill): \(a) vs \(b)")
            }
            #expect(NSDictionary(dictionary: try summary(out)).isEqual(to: try summary("whole")), "summary after a kill at \(kill)")
        }
        let auto = try f.train(args + ["--auto-resume", "--epochs", "1"], output: "auto-fresh")
        #expect(auto.status == 0 && !auto.stdout.contains("resuming"), "\(auto.stdout)\(auto.stderr)")
    }

    /// upstream's command, pasted: `vkprobe linprobe` trains as `vkprobe train` would.
    @Test func linprobeRunsUpstreamsCommand() throws {
        let f = try Fixture()
        let out = f.root.appendingPathComponent("linprobe").path
        let run = try runVkprobe(["linprobe", "--model", f.model, "--finetune", f.weights, "--data_path", f.data.path, "--dataset_name", "imagefolder",
                                  "--cls_features", "ep", "--ep_queries", "4", "--epochs", "1", "--batch_size", "8", "--warmup_epochs", "0",
                                  "--input_size", "32", "--num_workers", "2", "--output_dir", out, "--device", "cuda"])
        #expect(run.status == 1 && run.stderr.contains("more than --max-unreadable 1%"), "the fixture's 3 bad files of 29 stop it: \(run.stderr)")
        for name in Self.unreadable { try FileManager.default.removeItem(at: f.data.appendingPathComponent("train/a/\(name)")) }
        let clean = try runVkprobe(["linprobe", "--model", f.model, "--finetune", f.weights, "--data_path", f.data.path, "--dataset_name", "imagefolder",
                                    "--cls_features", "ep", "--ep_queries", "4", "--epochs", "1", "--batch_size", "8", "--warmup_epochs", "0",
                                    "--input_size", "32", "--num_workers", "2", "--output_dir", out, "--device", "cuda"])
        #expect(clean.status == 0, "\(clean.stderr)")
        #expect(clean.stdout.contains("note: --device cuda dropped"), "\(clean.stdout)")
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/summary.json"))) as? [String: Any]
        #expect((summary?["heads"] as? [String: Any])?.keys.sorted() == ["ep"])
    }

    /// Layer-wise probing in one pass: `--blocks 0,1,norm --cache-tokens` extracts the three taps
    /// from one backbone pass per image, then trains every head on each (DIR/<head>/<tap>); each
    /// tap's probe ends as a run on that tap alone does; summary.json holds all six with their tap,
    /// and the best tap per head.
    @Test func layerWiseProbingInOnePass() throws {
        let f = try Fixture()
        let run = try f.train(["--cache-tokens", "--blocks", "0,1,norm"], output: "layers")
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("at block0, block1, norm on"), "\(run.stdout)")
        for split in ["train", "val"] {
            let tokens = f.root.appendingPathComponent("layers/tokens/\(split)")
            #expect(Set(try FileManager.default.contentsOfDirectory(atPath: tokens.path)).isSuperset(of: ["block0", "block1", "norm", "extract.json"]))
        }
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: f.root.appendingPathComponent("layers/summary.json"))) as? [String: Any]
        let heads = try #require(summary?["heads"] as? [String: [String: Any]])
        #expect(Set(heads.keys) == ["ep/block0", "ep/block1", "ep/norm", "lp/block0", "lp/block1", "lp/norm"], "\(heads.keys)")
        #expect(heads["ep/block1"]?["tap"] as? String == "block1")
        let best = try #require(summary?["best"] as? [String: String])
        #expect(Set(best.keys) == ["ep", "lp"] && best["ep"]!.hasPrefix("ep/"))
        // The block1 probes end as a run on block1 alone.
        let alone = try f.train(["--cache-tokens", "--block", "1"], output: "block1")
        #expect(alone.status == 0, "\(alone.stderr)")
        for head in ["ep", "lp"] {
            let a = try String(contentsOf: f.root.appendingPathComponent("layers/\(head)/block1/metrics.jsonl"), encoding: .utf8)
            let b = try String(contentsOf: f.root.appendingPathComponent("block1/\(head)/metrics.jsonl"), encoding: .utf8)
            func strip(_ t: String) -> [String] { t.split(separator: "\n").map { $0.replacingOccurrences(of: #""seconds":[0-9.e-]+,?"#, with: "", options: .regularExpression) } }
            #expect(strip(a) == strip(b), "\(head) on block1: layer-wise vs alone")
        }
        // The report draws accuracy against depth, a line per head over block0, block1, norm.
        let report = try runVkprobe(["report", f.root.appendingPathComponent("layers").path, "--output", f.root.appendingPathComponent("report").path])
        #expect(report.status == 0, "\(report.stderr)")
        let depth = try String(contentsOf: f.root.appendingPathComponent("report/accuracy-vs-depth.svg"), encoding: .utf8)
        #expect(depth.components(separatedBy: "<polyline").count - 1 == 2 && depth.contains(">block0<") && depth.contains(">norm<"), "\(depth.prefix(400))")
        let online = try f.train(["--blocks", "0,1"], output: "online-layers")
        #expect(online.status != 0 && online.stderr.contains("add --cache-tokens"), "\(online.stderr)")
    }
}
