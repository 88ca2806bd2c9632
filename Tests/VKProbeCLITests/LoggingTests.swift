import Foundation
import ProbeTestSupport
import Testing

/// swift-log through the libraries, one console handler in the commands: `--log-level` and
/// `--quiet` on every subcommand, the device layer's decisions at debug, results unchanged.
@Suite struct LoggingTests {
    @Test(arguments: HelpTextTests.commands)
    func everyCommandTakesTheLogOptions(_ command: String) throws {
        let r = try runVkprobe([command, "--help"])
        // linprobe passes its flags through (its text names them); the others list them as options.
        let option = command == "linprobe" ? "--log-level LEVEL" : "--log-level <level>"
        #expect(r.status == 0 && r.stdout.contains(option) && r.stdout.contains("--quiet"), "\(command) --help: \(r.stdout)")
    }

    @Test func debugShowsTheDeviceLayersDecisionsAndQuietOnlyResults() throws {
        let dir = try temporaryDirectory("logging")
        let synth = try runVkprobe(["synth", "--output", dir.appendingPathComponent("data").path, "--train-samples", "128", "--val-samples", "64", "--quiet"])
        #expect(synth.status == 0, "\(synth.stderr)")
        func train(_ out: String, _ extra: [String], _ env: [String: String] = [:]) throws -> CLIRun {
            try runVkprobe(["train", "--train-tokens", dir.appendingPathComponent("data/train.safetensors").path,
                            "--val-tokens", dir.appendingPathComponent("data/val.safetensors").path, "--heads", "ep",
                            "--epochs", "1", "--warmup-epochs", "0", "--batch-size", "64", "--output", dir.appendingPathComponent(out).path] + extra,
                           environment: env)
        }
        let plain = try train("plain", [])
        #expect(plain.status == 0, "\(plain.stderr)")
        #expect(plain.stdout.contains("training ep on 128 samples") && plain.stdout.contains("ep epoch 1/1") && plain.stdout.contains("summary ("))
        #expect(!plain.stderr.contains("debug:"), "\(plain.stderr)")

        // A binding cap of 256 KiB makes the attention's operands split: said once per op and shape.
        let debug = try train("debug", ["--log-level", "debug"], ["VKPROBE_MAX_BINDING": "262144"])
        #expect(debug.status == 0, "\(debug.stderr)")
        let lines = debug.stderr.split(separator: "\n").map(String.init)
        for (what, needle) in [("device choice", "[vkprobe.device] device "), ("memory budget and limits", "bindings up to 262144 bytes (VKPROBE_MAX_BINDING)"),
                               ("pipeline cache", "[vkprobe.device] pipeline cache"), ("Mesa's cache", "Mesa's shader cache"),
                               ("kernel selection", "-class kernels: "), ("cooperative matrices", "cooperative-matrix GEMM: off"),
                               ("splits", "split into pieces that fit")] {
            #expect(lines.contains { $0.hasPrefix("debug: ") && $0.contains(needle) }, "no \(what) (\(needle)) in \(debug.stderr)")
        }
        let splits = lines.filter { $0.contains("split into pieces") }
        #expect(Set(splits).count == splits.count, "a split said twice: \(splits)")
        #expect(debug.stdout.contains("ep epoch 1/1"))

        // --quiet: the results alone.
        let quiet = try train("quiet", ["--quiet"])
        #expect(quiet.status == 0 && quiet.stderr.isEmpty, "\(quiet.stderr)")
        #expect(!quiet.stdout.contains("training ep on") && !quiet.stdout.contains("epoch 1/1") && !quiet.stdout.contains("peak device memory"), "\(quiet.stdout)")
        #expect(quiet.stdout.contains("summary (") && quiet.stdout.contains("best acc@1"), "\(quiet.stdout)")
        // The same result whatever is said.
        func best(_ r: CLIRun) -> [Substring] { r.stdout.split(separator: "\n").filter { $0.contains("best acc@1") } }
        #expect(!best(plain).isEmpty && best(plain) == best(quiet), "\(best(plain)) vs \(best(quiet))")

        // Contradictions and unknown levels, in words (linprobe's pass-through flags too).
        let both = try train("both", ["--quiet", "--log-level", "debug"])
        #expect(both.status != 0 && both.stderr.contains("--quiet means --log-level warning"), "\(both.stderr)")
        let bogus = try runVkprobe(["linprobe", "--log-level", "loud", "--model", "vit_base_patch16", "--dry-run"])
        #expect(bogus.status != 0 && bogus.stderr.contains("loud") && !bogus.stderr.contains("CommandError"), "\(bogus.stderr)")
    }
}
