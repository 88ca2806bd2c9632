import Foundation
import ProbeBackbones
import ProbeData
import ProbeTestSupport
import SafeTensors
import Testing

/// `vkprobe train --finetune`: the backbone trained with the head on images, as a user runs it
/// (tiny random ViT with registers and LayerScale, small ImageFolder, validation layer on).
@Suite(.serialized) struct FineTuneRunTests {
    struct Fixture {
        let root: URL, data: URL, model: String, weights: String
        init() throws {
            root = try temporaryDirectory("finetune-run")
            data = root.appendingPathComponent("data")
            try writeImageFolder(data, splits: [("train", 8), ("val", 4)], classes: ["a", "b", "c"], size: 40, seed: 3)
            let json = #"{"patch_size": 8, "embed_dim": 32, "depth": 3, "num_heads": 2, "img_size": 32, "init_values": 0.5, "reg_tokens": 2, "no_embed_class": true}"#
            model = root.appendingPathComponent("tiny-vit.json").path
            try json.write(toFile: model, atomically: true, encoding: .utf8)
            weights = root.appendingPathComponent("tiny-vit.safetensors").path
            try ViTWeights.random(try ViTConfig.fromTimmArguments(json), seed: 4).write(to: weights)
        }
        func arguments(_ extra: [String], output: String) -> [String] {
            ["train", "--validation", "--model", model, "--weights", weights, "--data", data.path, "--image-size", "32",
             "--heads", "ep", "--ep-queries", "4", "--epochs", "3", "--global-batch-size", "8", "--warmup-epochs", "1", "--blr", "0.5",
             "--workers", "2", "--output", root.appendingPathComponent(output).path] + extra
        }
        func metrics(_ run: String) throws -> [[String: Double]] {
            try String(contentsOf: root.appendingPathComponent("\(run)/ep/metrics.jsonl"), encoding: .utf8).split(separator: "\n").map { line in
                var m = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Double]
                m["seconds"] = nil
                return m
            }
        }
    }

    /// --finetune 2: the last two blocks and the final norm change, the first block and the
    /// embeddings stay bit for bit; the saved model loads as timm names; a kill after the first
    /// epoch's training state resumes to the same numbers; the frozen run differs.
    @Test func lastBlocksTrainSaveAndResume() throws {
        let f = try Fixture()
        // `norm`: the heads read forward_features, so the final norm trains too (at the default
        // tap of a plain ViT, block -1, it is not used).
        let ft = ["--finetune", "2", "--block", "norm"]
        let whole = try runVkprobe(f.arguments(ft, output: "ft"))
        #expect(whole.status == 0, "\(whole.stderr)")
        #expect(whole.stdout.contains("fine-tuning the last 2 blocks and the final norm"), "\(whole.stdout)")
        let saved = f.root.appendingPathComponent("ft/ep/backbone-last.safetensors").path
        let before = try SafeTensorsFile(path: f.weights), after = try SafeTensorsFile(path: saved)
        #expect(Set(before.names) == Set(after.names), "the saved model's tensors are the model's")
        var changed: [String] = []
        for name in before.names where try before.floats(name) != (try after.floats(name)) { changed.append(name) }
        let trained = Set(changed.map { $0.hasPrefix("blocks.") ? String($0.prefix(8)) : $0 })
        #expect(!changed.contains { $0.hasPrefix("blocks.0.") || $0.hasPrefix("patch_embed") || $0 == "pos_embed" || $0 == "cls_token" || $0 == "reg_token" },
                "frozen tensors changed: \(changed)")
        #expect(trained.isSuperset(of: ["blocks.1", "blocks.2"]) && changed.contains("norm.weight"), "\(changed)")
        // The saved model runs (`vkprobe extract --weights`): a timm-named checkpoint of the same architecture.
        let extract = try runVkprobe(["extract", "--validation", "--model", f.model, "--weights", saved, "--data", f.data.path, "--image-size", "32",
                                      "--output", f.root.appendingPathComponent("tokens").path, "--workers", "2"])
        #expect(extract.status == 0, "\(extract.stderr)")

        let killed = try runVkprobe(f.arguments(ft, output: "killed"), environment: ["VKPROBE_KILL_AT": "state:*:0"])
        #expect(killed.status != 0, "not killed")
        let resumed = try runVkprobe(f.arguments(ft + ["--resume"], output: "killed"))
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try f.metrics("killed") == (try f.metrics("ft")), "resumed run differs from the whole one")
        let resumedModel = try SafeTensorsFile(path: f.root.appendingPathComponent("killed/ep/backbone-last.safetensors").path)
        for name in after.names { #expect(try resumedModel.floats(name) == (try after.floats(name)), "\(name) after resume") }
        // Other settings are refused on resume, naming --finetune.
        let other = try runVkprobe(f.arguments(["--finetune", "1", "--block", "norm", "--resume"], output: "killed"))
        #expect(other.status != 0 && other.stderr.contains("finetune: checkpoint 2, now 1"), "\(other.stderr)")

        let frozen = try runVkprobe(f.arguments(["--block", "norm"], output: "frozen"))
        #expect(frozen.status == 0, "\(frozen.stderr)")
        #expect(try f.metrics("frozen") != (try f.metrics("ft")))
    }

    /// --finetune all trains the embeddings too, with a [CLS] head; --finetuning is upstream's spelling.
    @Test func everythingTrains() throws {
        let f = try Fixture()
        let run = try runVkprobe(f.arguments(["--finetune", "all", "--heads", "lp", "--epochs", "1"], output: "all"))
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("fine-tuning every parameter of the backbone"), "\(run.stdout)")
        let before = try SafeTensorsFile(path: f.weights)
        let after = try SafeTensorsFile(path: f.root.appendingPathComponent("all/lp/backbone-last.safetensors").path)
        for name in ["patch_embed.proj.weight", "pos_embed", "cls_token", "reg_token", "blocks.0.ls1.gamma", "blocks.2.mlp.fc2.weight"] {
            #expect(try before.floats(name) != (try after.floats(name)), "\(name) did not train")
        }
    }

    @Test func refusalsSayWhy() throws {
        let f = try Fixture()
        for (extra, reason) in [(["--finetune", "2", "--heads", "ep,lp"], "one head per run"),
                                (["--finetune", "2", "--blr", "0.1,0.2"], "one head per run"),
                                (["--finetune", "2", "--cache-tokens"], "cannot train on a token cache"),
                                (["--finetune", "4"], "expected `all` or a number of last blocks in 1…3"),
                                (["--finetune", "1", "--block", "1"], "use --blocks -1 or norm")] {
            let r = try runVkprobe(f.arguments(extra, output: "refused"))
            #expect(r.status != 0 && r.stderr.contains(reason), "\(extra): \(r.stderr)")
        }
        // The newer families fine-tune through the command line too (Hiera: its last stage).
        for (model, size, reason) in [("hiera_base_224", 64, ""), ("vit_base_patch16_dinov3", 32, ""), ("aimv2_large_patch14_224", 28, "")] {
            let json = f.root.appendingPathComponent("\(model).json").path
            let text = model.hasPrefix("hiera") ? #"{"model": "\#(model)", "embed_dim": 8, "num_heads": 1, "stages": [1, 1, 1, 1], "img_size": \#(size)}"#
                : #"{"model": "\#(model)", "embed_dim": 32, "depth": 2, "num_heads": 2, "img_size": \#(size)}"#
            try text.write(toFile: json, atomically: true, encoding: .utf8)
            let weights = f.root.appendingPathComponent("\(model).safetensors").path
            try ViTWeights.random(try ViTConfig.fromTimmArguments(try String(contentsOfFile: json, encoding: .utf8)), seed: 1).write(to: weights)
            let r = try runVkprobe(["train", "--validation", "--model", json, "--weights", weights, "--data", f.data.path, "--image-size", "\(size)",
                                    "--heads", "ep", "--ep-queries", "4", "--finetune", "1", "--epochs", "1", "--global-batch-size", "8",
                                    "--warmup-epochs", "0", "--workers", "2", "--output", f.root.appendingPathComponent(model).path])
            if reason.isEmpty {
                #expect(r.status == 0 && r.stdout.contains("fine-tuning the last block"), "\(model): \(r.stderr)")
            } else {
                #expect(r.status != 0 && r.stderr.contains(reason), "\(model): \(r.stderr)")
            }
        }
    }
}
