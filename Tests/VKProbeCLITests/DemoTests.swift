import Foundation
import ProbeTestSupport
import Testing

/// `vkprobe demo` at a reduced size, as `make demo` runs it where the assets are missing (a random
/// ViT, generated glyphs): it finishes, says what it fell back to, and writes its run, curves and
/// maps. In `make test` it also runs under the GPU kernel selection.
@Suite struct DemoTests {
    @Test func theDemoRunsAtAReducedSize() throws {
        let dir = try temporaryDirectory("demo")
        let out = dir.appendingPathComponent("demo-output")
        let r = try runVkprobe(["demo", "--validation", "--output", out.path, "--weights", dir.appendingPathComponent("demo-assets/vit_s_focus.safetensors").path,
                                "--fashion-mnist", dir.appendingPathComponent("no-fashion-mnist").path, "--train-samples", "48",
                                "--val-samples", "24", "--image-size", "56", "--blocks", "1", "--epochs", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.lowercased().contains("random"), "the fallback to a random ViT is said: \(r.stdout)")
        let files = (FileManager.default.enumerator(atPath: out.path)?.allObjects as? [String]) ?? []
        #expect(files.contains { $0.hasSuffix("summary.json") }, "\(files.sorted())")
        #expect(files.contains { $0.hasSuffix(".png") }, "maps drawn: \(files.sorted())")
    }
}
