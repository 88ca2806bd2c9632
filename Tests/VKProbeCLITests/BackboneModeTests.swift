import Foundation
import ProbeTestSupport
import SafeTensors
import Testing

/// `vkprobe train --backbone-mode train` from the command line: upstream's train-mode backbone
/// (SimMIM's drop path here, the `simmim_vitb` row's model) while the heads train, reproducible
/// from --seed, recorded in the protocol line, refused with a token cache; a family without
/// train-time randomness says so. (The forward itself is held to upstream's by TrainModeTests.)
@Suite struct BackboneModeTests {
    /// The row's model and its four JPEG files as two classes, in train/ and val/.
    static func setUp(_ row: String) throws -> (model: String, weights: String, data: String, work: URL) {
        let s = try RowGoldenTests.setUp(row)
        let all = s.work.appendingPathComponent("data/all")
        let files = try FileManager.default.contentsOfDirectory(atPath: all.path).sorted()
        for split in ["train", "val"] {
            for (k, name) in files.enumerated() {
                let dir = s.work.appendingPathComponent("split/\(split)/\(k % 2 == 0 ? "a" : "b")")
                try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
                try FileManager.default.copyItem(at: all.appendingPathComponent(name), to: dir.appendingPathComponent(name))
            }
        }
        return (s.model, s.weights, s.work.appendingPathComponent("split").path, s.work)
    }

    static func train(_ s: (model: String, weights: String, data: String, work: URL), _ name: String, _ extra: [String]) throws -> (CLIRun, String) {
        let out = s.work.appendingPathComponent(name)
        let r = try runVkprobe(["train", "--validation", "--model", s.model, "--weights", s.weights, "--data", s.data, "--heads", "lp", "--epochs", "2",
                                "--batch-size", "2", "--precision", "fp32", "--no-augment", "--output", out.path] + extra)
        let metrics = (try? String(contentsOf: out.appendingPathComponent("lp/metrics.jsonl"), encoding: .utf8)) ?? ""
        return (r, metrics)
    }

    @Test func trainModeIsReproducibleAndDiffersFromEvalMode() throws {
        let s = try Self.setUp("simmim_vitb")
        let (a, ma) = try Self.train(s, "a", ["--backbone-mode", "train", "--seed", "3"])
        #expect(a.status == 0, "\(a.stderr)")
        #expect(a.stdout.contains("backbone in train mode while the heads train"), "\(a.stdout)")
        let (b, mb) = try Self.train(s, "b", ["--backbone-mode", "train", "--seed", "3"])
        // Each epoch's numbers (the wall-clock seconds aside).
        func numbers(_ m: String, _ key: String) -> [Double] {
            m.split(separator: "\n").compactMap { line in
                (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]).flatMap { $0?[key] as? Double }
            }
        }
        #expect(b.status == 0 && numbers(ma, "train_loss").count == 2, "\(b.stderr) \(ma)")
        for key in ["train_loss", "val_loss", "val_acc1"] {
            #expect(numbers(ma, key) == numbers(mb, key), "\(key): the same seed, another run: \(numbers(ma, key)) vs \(numbers(mb, key))")
        }
        let (e, me) = try Self.train(s, "e", ["--seed", "3"])
        #expect(e.status == 0 && !e.stdout.contains("train mode"))
        // The training loss sees the drop path; evaluation runs in eval mode either way (the first
        // epoch's validation, after one epoch of different updates, may differ too).
        #expect(numbers(ma, "train_loss") != numbers(me, "train_loss"), "train-mode training losses equal eval mode's: \(numbers(ma, "train_loss"))")
        let (c, _) = try Self.train(s, "c", ["--backbone-mode", "train", "--cache-tokens"])
        #expect(c.status != 0 && c.stderr.contains("--backbone-mode train: ") && c.stderr.contains("drop --cache-tokens"), "\(c.stderr)")
        let mae = try Self.setUp("mae_base")
        let (n, _) = try Self.train(mae, "n", ["--backbone-mode", "train"])
        #expect(n.status == 0 && n.stdout.contains("has no train-time randomness"), "\(n.stdout) \(n.stderr)")
    }
}
