import Foundation
import ProbeBackbones
import ProbeTestSupport
import SafeTensors
import Testing

/// The probing protocol per family: `vkprobe extract` with its defaults (no --blocks) on the
/// protocol goldens (`Tests/Goldens/protocol_<case>`, written by Bench/tools/make_protocol_goldens.py
/// from timm and the hub DINOv2's interpolation) writes the tokens upstream's code path feeds its
/// heads — after the final norm, registers stripped, DINOv2's 37×37 table used at 16×16 as the hub
/// resizes it, CLIP with GELU or QuickGELU, SigLIP with exact GELU — within 1e-4 relative (fp32:
/// summation order only, as the ViT goldens).
/// A golden's model in `work`: its `config` metadata as `model.json` (a timm config `ViTConfig`
/// reads) and its tensors but `input.*` and `expected.*` as `model.safetensors`; their paths.
func writeGoldenModel(_ golden: SafeTensorsFile, into work: URL) throws -> (model: String, weights: String) {
    let model = work.appendingPathComponent("model.json").path, weightsPath = work.appendingPathComponent("model.safetensors").path
    try #require(golden.metadata["config"]).write(toFile: model, atomically: true, encoding: .utf8)
    var weights = SafeTensorsWriter()
    for n in golden.names where !n.hasPrefix("input.") && !n.hasPrefix("expected.") { weights.add(n, try golden.floats(n), shape: try golden.entry(n).shape) }
    try weights.write(to: weightsPath)
    return (model, weightsPath)
}

@Suite struct ProtocolTests {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Goldens")
    static let cases = ["dinov2", "dinov2reg", "clip", "clipquick", "siglip"]

    /// The golden, a work directory holding its model as a timm JSON config (`model.json`), its
    /// weights (`model.safetensors`) and its images (`images.safetensors`), and the config's path.
    static func setUp(_ name: String) throws -> (SafeTensorsFile, URL, String) {
        let golden = try SafeTensorsFile(path: dir.appendingPathComponent("protocol_\(name).safetensors").path)
        let work = try temporaryDirectory("protocol-\(name)")
        let model = try writeGoldenModel(golden, into: work).model
        let shape = try golden.entry("input.image").shape
        var images = SafeTensorsWriter()
        images.add("images", try golden.floats("input.image"), shape: shape)
        images.add("labels", int64: (0..<Int64(shape[0])).map { $0 }, shape: [shape[0]])
        try images.write(to: work.appendingPathComponent("images.safetensors").path)
        return (golden, work, model)
    }

    @Test(arguments: cases)
    func defaultExtractionIsWhatUpstreamProbes(_ name: String) throws {
        let (golden, work, model) = try Self.setUp(name)
        let out = work.appendingPathComponent("out")
        let run = try runVkprobe(["extract", "--validation", "--model", model, "--weights", work.appendingPathComponent("model.safetensors").path,
                                  "--images", work.appendingPathComponent("images.safetensors").path, "--precision", "fp32", "--output", out.path])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(!run.stderr.contains("alidation"), "\(run.stderr)")
        let shard = try SafeTensorsFile(path: out.appendingPathComponent("norm/shard-00000.safetensors").path)
        let tokens = relativeError(try shard.floats("tokens"), try golden.floats("expected.tokens"))
        #expect(try shard.entry("tokens").shape == golden.entry("expected.tokens").shape)
        #expect(tokens <= 1e-4, "\(name): tokens \(tokens) relative to upstream's")
        // The correct configuration's error is fp32 rounding (the SigLIP mutant's floor is 10× it).
        #expect(tokens <= 5e-7, "\(name): \(tokens)")
        // `cls` is what upstream's `cls` reads: the pooled head's output where the checkpoint has
        // one (CLIP's projection, SigLIP's MAP), else the normed [CLS].
        if let key = ["expected.pooled", "expected.cls"].first(where: { golden.entries[$0] != nil }) {
            #expect(try shard.entry("cls").shape == golden.entry(key).shape)
            let cls = relativeError(try shard.floats("cls"), try golden.floats(key))
            #expect(cls <= 1e-4, "\(name): cls \(cls) relative to upstream's \(key)")
        } else {
            #expect(shard.entries["cls"] == nil)
        }
        if golden.entries["expected.pooled"] != nil && golden.entries["expected.cls"] != nil {
            // --cls token: the [CLS] token itself, as before the projection.
            let tokenOut = work.appendingPathComponent("out-token")
            let token = try runVkprobe(["extract", "--model", model, "--weights", work.appendingPathComponent("model.safetensors").path,
                                        "--images", work.appendingPathComponent("images.safetensors").path, "--precision", "fp32", "--cls", "token",
                                        "--output", tokenOut.path])
            #expect(token.status == 0, "\(token.stderr)")
            let raw = try SafeTensorsFile(path: tokenOut.appendingPathComponent("norm/shard-00000.safetensors").path)
            #expect(relativeError(try raw.floats("cls"), try golden.floats("expected.cls")) <= 1e-4)
        }
    }

    /// The mutants the goldens must catch: the 518-px table resized as timm does (antialiased)
    /// instead of as the hub does, CLIP's QuickGELU where the weights use GELU, SigLIP's tanh-GELU.
    @Test func theGoldensTellTheVariantsApart() throws {
        for (name, override) in [("dinov2", ["--pos-embed-resize", "antialias"]), ("clip", ["--activation", "quick_gelu"]), ("siglip", ["--activation", "gelu_tanh"])] {
            let (golden, work, model) = try Self.setUp(name)
            let out = work.appendingPathComponent("out")
            let run = try runVkprobe(["extract", "--model", model, "--weights", work.appendingPathComponent("model.safetensors").path,
                                      "--images", work.appendingPathComponent("images.safetensors").path, "--precision", "fp32", "--output", out.path] + override)
            #expect(run.status == 0, "\(run.stderr)")
            let shard = try SafeTensorsFile(path: out.appendingPathComponent("norm/shard-00000.safetensors").path)
            let err = relativeError(try shard.floats("tokens"), try golden.floats("expected.tokens"))
            // tanh-GELU departs from GELU by at most ~3e-4 of an activation: SigLIP's mutant stays
            // under the 1e-4 bound here (~6e-6), so it must be at least 10× the default's error.
            let floor = name == "siglip" ? 5e-6 : 1e-3
            #expect(err > floor, "\(name) with \(override): \(err) — the golden does not tell them apart")
        }
    }
}
