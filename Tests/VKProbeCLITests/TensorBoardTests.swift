import Foundation
import ProbeTestSupport
@testable import ProbeTraining
import Testing

/// `--tensorboard` event files, read back by TensorBoard's own reader (`EventAccumulator`, from
/// the `tensorboard` package `make test` installs into .venv-tensorboard): every scalar upstream's
/// SummaryWriter writes, with the values the run recorded in metrics.jsonl, and the curves as PNG
/// image summaries.
@Suite struct TensorBoardTests {
    @Test func crc32cOfTheStandardVector() {
        // CRC-32C check value (RFC 3720, "123456789").
        #expect(TensorBoardWriter.crc32c(Data("123456789".utf8)) == 0xE306_9283)
    }

    @Test func tensorBoardReadsEveryScalar() throws {
        let env = ProcessInfo.processInfo.environment
        let python = env["VKPROBE_TENSORBOARD_PYTHON"] ?? "python3"
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        probe.arguments = [python, "-c", "import tensorboard"]
        probe.standardError = FileHandle.nullDevice
        try probe.run(); probe.waitUntilExit()
        guard probe.terminationStatus == 0 else {
            // `make test` installs it and sets VKPROBE_REQUIRE_TENSORBOARD: there the reader is a must.
            #expect(env["VKPROBE_REQUIRE_TENSORBOARD"] != "1", "\(python) has no tensorboard (make test installs it into .venv-tensorboard)")
            return
        }
        let dir = try temporaryDirectory("tensorboard")
        let synth = try runVkprobe(["synth", "--output", dir.appendingPathComponent("data").path, "--train-samples", "512", "--val-samples", "128"])
        #expect(synth.status == 0)
        let r = try runVkprobe(["train", "--train-tokens", dir.appendingPathComponent("data/train.safetensors").path,
                                "--val-tokens", dir.appendingPathComponent("data/val.safetensors").path, "--heads", "ep,lp_gap",
                                "--epochs", "2", "--batch-size", "128", "--warmup-epochs", "0", "--output", dir.appendingPathComponent("run").path,
                                "--log_dir", dir.appendingPathComponent("tb").path])
        #expect(r.status == 0, "\(r.stderr)")
        let script = """
        import glob, json, sys
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        files = glob.glob(sys.argv[1] + '/events.out.tfevents.*')
        assert len(files) == 1, files
        ea = EventAccumulator(files[0]); ea.Reload()
        out = {t: [[e.step, e.value] for e in ea.Scalars(t)] for t in ea.Tags()['scalars']}
        for t in ea.Tags()['images']:
            out['image:' + t] = [[e.step, e.width, e.height, len(e.encoded_image_string), e.encoded_image_string[:8].hex()] for e in ea.Images(t)]
        print(json.dumps(out))
        """
        let read = Process()
        read.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        read.arguments = [python, "-c", script, dir.appendingPathComponent("tb").path]
        let out = Pipe()
        read.standardOutput = out
        try read.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        read.waitUntilExit()
        #expect(read.terminationStatus == 0)
        let everything = try #require(try JSONSerialization.jsonObject(with: data) as? [String: [[Any]]])
        let scalars = everything.filter { !$0.key.hasPrefix("image:") }.mapValues { $0.map { $0.compactMap { ($0 as? NSNumber)?.doubleValue } } }
        for head in ["ep", "lp_gap"] {
            let metrics = try String(contentsOf: dir.appendingPathComponent("run/\(head)/metrics.jsonl"), encoding: .utf8).split(separator: "\n")
                .map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Double] }
            #expect(metrics.count == 2)
            for (tag, key) in [("train_acc1", "train_acc1"), ("train_loss", "train_loss"), ("test_acc1", "val_acc1"), ("test_acc5", "val_acc5"), ("test_loss", "val_loss")] {
                let series = try #require(scalars["test_v1_\(head)/\(tag)"], "no test_v1_\(head)/\(tag) in \(scalars.keys.sorted())")
                #expect(series.map { Int($0[0]) } == [0, 1])
                for (point, m) in zip(series, metrics) {
                    // Scalars are f32 in the event: within its rounding of the recorded value.
                    #expect(abs(point[1] - m[key]!) <= 1e-6 * max(1, abs(m[key]!)), "\(head) \(tag) epoch \(Int(point[0])): \(point[1]) vs \(m[key]!)")
                }
            }
            // loss and lr at every optimiser step (4 per epoch), at step epoch·1000.
            let lr = try #require(scalars["\(head)/lr"])
            #expect(lr.map { Int($0[0]) } == [0, 250, 500, 750, 1000, 1250, 1500, 1750], "\(lr)")
            // metrics.jsonl records the lr of an epoch's last step.
            for e in 0..<2 { #expect(abs(lr[4 * e + 3][1] - metrics[e]["lr"]!) <= 1e-6 * metrics[e]["lr"]!, "epoch \(e)'s last lr \(lr[4 * e + 3][1]) vs \(metrics[e]["lr"]!)") }
            #expect(scalars["\(head)/loss"]?.count == 8)
            // The curves as a PNG image each epoch.
            let images = try #require(everything["image:test_v1_\(head)/curves"], "no curves image in \(everything.keys.sorted())")
            #expect(images.count == 2 && images.allSatisfy { ($0[1] as? Int) == 320 && ($0[2] as? Int) == 200 && ($0[4] as? String) == "89504e470d0a1a0a" }, "\(images)")
        }
    }
}
