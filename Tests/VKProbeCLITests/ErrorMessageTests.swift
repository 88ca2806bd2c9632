import Foundation
import ProbeTestSupport
import Testing

/// Mistakes get one or two sentences naming the path or flag — never Foundation's `Error Domain=…
/// UserInfo={…}` dumps, `Optional(…)` or enum dumps — and destinations are checked before any
/// work (issue #43).
@Suite struct ErrorMessageTests {
    static func expectSentence(_ r: CLIRun, contains: String, _ what: String) {
        #expect(r.status != 0, "\(what): succeeded")
        #expect(r.stderr.contains(contains), "\(what): \(r.stderr)")
        for dump in ["Error Domain", "Info={", "Optional(", "NSCocoa", "NSURL", "a system error"] {
            #expect(!r.stderr.contains(dump), "\(what): a dump reaches the user: \(r.stderr)")
        }
    }

    @Test func destinationsAndMissingFilesAreSentences() throws {
        let dir = try temporaryDirectory("errors")
        let file = dir.appendingPathComponent("a-file")
        try Data("x".utf8).write(to: file)
        let data = dir.appendingPathComponent("data")
        #expect(try runVkprobe(["synth", "--output", data.path, "--train-samples", "32", "--val-samples", "16", "--tokens", "4", "--dim", "8"]).status == 0)
        let train = data.appendingPathComponent("train.safetensors").path, val = data.appendingPathComponent("val.safetensors").path
        Self.expectSentence(try runVkprobe(["synth", "--output", file.path]), contains: "--output \(file.path): a file is there", "synth into a file")
        Self.expectSentence(try runVkprobe(["train", "--train-tokens", train, "--val-tokens", val, "--output", file.path]),
                            contains: "--output \(file.path): a file is there", "train into a file")
        // Checked before the model: the weights named do not even exist.
        Self.expectSentence(try runVkprobe(["extract", "--model", "vit_small_patch16_224", "--weights", dir.appendingPathComponent("none.safetensors").path,
                                            "--images", train, "--output", file.path]), contains: "--output \(file.path): a file is there", "extract into a file")
        Self.expectSentence(try runVkprobe(["knn", "--train-tokens", train, "--val-tokens", val, "--k", "5", "--output", dir.path]),
                            contains: "--output \(dir.path): a folder is there", "knn into a folder")
        Self.expectSentence(try runVkprobe(["train", "--train-tokens", dir.appendingPathComponent("missing.safetensors").path, "--val-tokens", val,
                                            "--output", dir.appendingPathComponent("run").path]), contains: "missing.safetensors", "missing tokens")
        Self.expectSentence(try runVkprobe(["report", dir.appendingPathComponent("no-run").path]), contains: "no-run", "report of no run")
        // A hub name the server cannot give: the failure in words (libcurl's), not NSURLError's dump.
        Self.expectSentence(try runVkprobe(["extract", "--model", "vit_small_patch16_224.augreg_in21k", "--images", train, "--output", dir.appendingPathComponent("hub").path],
                                           environment: ["HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": dir.appendingPathComponent("hf").path]),
                            contains: "cannot reach http://127.0.0.1:9", "hub unreachable")
        #expect(try runVkprobe(["extract", "--model", "vit_small_patch16_224.augreg_in21k", "--images", train, "--output", dir.appendingPathComponent("hub").path],
                               environment: ["HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": dir.appendingPathComponent("hf").path]).stderr.contains("Couldn't connect to server"))
        // A file's folder is made: knn's JSON into a new folder works.
        let nested = dir.appendingPathComponent("new/sub/knn.json")
        let knn = try runVkprobe(["knn", "--train-tokens", train, "--val-tokens", val, "--k", "5", "--output", nested.path])
        #expect(knn.status == 0 && FileManager.default.fileExists(atPath: nested.path), "\(knn.stderr)")
    }

    /// Every subcommand answers its mistakes — sizes of zero, files that are folders or not what
    /// they should be, names that do not exist — with a sentence naming the flag or path, status
    /// 1, no crash and no dump (each of these crashed or dumped before).
    @Test func everySubcommandsMistakesAreSentences() throws {
        let dir = try temporaryDirectory("mistakes")
        let garbage = dir.appendingPathComponent("garbage.safetensors")
        try Data("garbage".utf8).write(to: garbage)
        let run = dir.appendingPathComponent("run")
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        try Data("{".utf8).write(to: run.appendingPathComponent("summary.json"))
        let cases: [([String], String)] = [
            (["devices", "--device", "99"], "No Vulkan device matches '99'"),
            (["smoke", "--elements", "0"], "--elements 0"),
            (["synth", "--output", dir.appendingPathComponent("s1").path, "--classes", "0"], "--classes 0: at least 2"),
            (["synth", "--output", dir.appendingPathComponent("s2").path, "--tokens", "1"], "--tokens 1: at least 2"),
            (["synth", "--output", dir.appendingPathComponent("s3").path, "--train-samples", "0"], "--train-samples 0: at least 1"),
            (["heads", "--dim", "0", "--no-measure"], "--dim 0: at least 1"),
            (["heads", "--heads", "nope", "--no-measure"], "unknown head 'nope'"),
            (["extract", "--model", "vit_small_patch16_224", "--weights", dir.path, "--images", garbage.path, "--output", dir.appendingPathComponent("e1").path],
             "\(dir.path): a folder, where a .safetensors file is needed"),
            (["extract", "--model", "vit_small_patch16_224", "--weights", dir.appendingPathComponent("none.safetensors").path, "--images", garbage.path,
              "--batch-size", "0", "--output", dir.appendingPathComponent("e2").path], "--batch-size 0"),
            (["train", "--train-tokens", garbage.path, "--val-tokens", garbage.path, "--output", dir.appendingPathComponent("t").path], "garbage.safetensors: truncated"),
            (["knn", "--train-tokens", garbage.path, "--val-tokens", garbage.path], "garbage.safetensors"),
            (["maps", "--run", dir.appendingPathComponent("nowhere").path, "--images", dir.path], "backbone.json is missing"),
            (["report", run.path], "summary.json: unreadable, not valid JSON"),
            (["check-transforms", dir.path], "a folder, where a .safetensors file is needed"),
            (["demo", "--weights", dir.appendingPathComponent("none.safetensors").path, "--output", dir.appendingPathComponent("d").path], "--weights"),
            (["linprobe", "--model", "vit_base_patch16", "--dry-run"], "--finetune CHECKPOINT is needed"),
        ]
        #expect(Set(cases.map { $0.0[0] }) == Set(HelpTextTests.commands), "a mistake for every subcommand")
        for (args, words) in cases {
            let r = try runVkprobe(args)
            Self.expectSentence(r, contains: words, args.joined(separator: " "))
            #expect(r.status == 1 && !r.stderr.contains("Fatal error") && !r.stderr.contains("DecodingError"), "\(args.joined(separator: " ")): status \(r.status) \(r.stderr)")
        }
    }

    /// Extracting into a folder of another extraction names the setting that differs as a user
    /// reads it (the protocol line, the taps), not Swift's descriptions of optionals.
    @Test func anotherExtractionNamesTheDifference() throws {
        let s = try RowGoldenTests.setUp("mae_base")
        let out = s.work.appendingPathComponent("tokens")
        func extract(_ blocks: String) throws -> CLIRun {
            try runVkprobe(["extract", "--model", s.model, "--weights", s.weights, "--data", s.data, "--split", "none", "--precision", "fp32",
                            "--blocks", blocks, "--output", out.path])
        }
        #expect(try extract("-1").status == 0)
        let other = try extract("0")
        Self.expectSentence(other, contains: "before block1, now block0", "another extraction")
        // extract.json spells its keys in snake_case; a folder of the first versions (camelCase)
        // is still the same extraction: continued, not refused.
        let manifest = out.appendingPathComponent("extract.json")
        let text = try String(contentsOf: manifest, encoding: .utf8)
        #expect(text.contains("\"image_count\"") && text.contains("\"input_size\"") && !text.contains("imageCount"), "\(text)")
        var camel = text
        for (snake, first) in [("image_count", "imageCount"), ("input_size", "inputSize"), ("shard_size", "shardSize"), ("output_f16", "outputF16"),
                               ("weights_bytes", "weightsBytes"), ("pos_embed_resize", "posEmbedResize"), ("decoded_with_warnings", "decodedWithWarnings")] {
            camel = camel.replacingOccurrences(of: "\"\(snake)\"", with: "\"\(first)\"")
        }
        try camel.write(to: manifest, atomically: true, encoding: .utf8)
        let again = try extract("-1")
        #expect(again.status == 0, "a first-version extract.json: \(again.stderr)")
    }
}
