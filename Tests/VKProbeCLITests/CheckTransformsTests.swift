import Foundation
import ProbeTestSupport
import Testing

/// `Bench/tools/make_transform_goldens.py --images DIR` over a folder of odd files (the decoder
/// corpus), then `vkprobe check-transforms`: every file as PIL and torchvision have it; a file
/// swapped after the golden was written is reported and fails the check.
@Suite struct CheckTransformsTests {
    @Test func aFolderChecksAgainstPIL() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let dir = try temporaryDirectory("check-transforms")
        let images = dir.appendingPathComponent("images"), out = dir.appendingPathComponent("golden")
        let python = URL(fileURLWithPath: "/usr/bin/python3")
        let env = ProcessInfo.processInfo.environment
        let corpus = try runProgram(python, [root.appendingPathComponent("Bench/tools/make_decode_corpus.py").path, images.path], environment: env)
        #expect(corpus.status == 0, "\(corpus.stderr)")
        let golden = try runProgram(python, [root.appendingPathComponent("Bench/tools/make_transform_goldens.py").path, "--images", images.path,
                                             "--out", out.path, "--size", "24", "--tag", "mine"], environment: env)
        #expect(golden.status == 0, "\(golden.stderr)")
        let file = out.appendingPathComponent("transform_mine.safetensors").path
        let check = try runVkprobe(["check-transforms", file])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        #expect(check.stdout.contains("59 files: 48 decode and transform as PIL and torchvision, 11 refused as PIL refuses them, 0 differ"), "\(check.stdout)")
        #expect(check.stdout.contains("refused  ../images/bad-12bit.jpg: by PIL too"), "\(check.stdout)")
        // Another picture under a checked name: the check fails, naming it.
        try Data(contentsOf: images.appendingPathComponent("jpeg-444.jpg")).write(to: images.appendingPathComponent("jpeg-420.jpg"))
        let swapped = try runVkprobe(["check-transforms", "--quiet", file])
        #expect(swapped.status == 1)
        #expect(swapped.stdout.contains("DIFFERS  ../images/jpeg-420.jpg") && swapped.stdout.contains("1 differ"), "\(swapped.stdout)")
    }
}
