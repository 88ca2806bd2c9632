import Foundation
import ProbeBackbones
import ProbeKernels
import ProbeTestSupport
import SafeTensors
import Testing

/// The newer timm families (BEiT, EVA-02, EVA-02-CLIP, DINOv3, PE-Core, AIMv2, the `_gap_` ViT, Hiera)
/// against timm itself: goldens kept in the repository (`Tests/Goldens/families`, written by
/// `Bench/tools/make_family_goldens.py`), each a registry name at a small width and depth with
/// every parameter random, built from the registry entry plus the same overrides timm was given.
@Suite(.serialized) struct FamilyGoldenTests {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Goldens/families")
    static let files = ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.hasSuffix(".safetensors") }.sorted()

    @Test func everyFamilyHasAGolden() {
        let cases = Set(Self.files.map { $0.replacingOccurrences(of: ".safetensors", with: "") })
        for c in ["beitv2", "beit", "beitshared", "eva02", "eva02tiny", "eva02clip", "eva02e", "dinov3", "dinov3hub", "dinov3swiglu", "dinov3qkvb", "pecore", "aimv2", "vitgap", "hiera"] {
            #expect(cases.contains(c), "no golden \(c).safetensors in \(Self.dir.path)")
        }
    }

    /// The registry entry the golden names, with timm's overrides, is the architecture the
    /// tensors have (every tensor present, none left over, each of its shape).
    @Test(arguments: files)
    func registryEntryMatchesTimmsTensors(_ fileName: String) throws {
        let g = try ViTGolden(Self.dir.appendingPathComponent(fileName).path)
        let pooled = g.weights.pooledHead.map { ViTWeights.pooledShapes(g.config, $0, projection: g.weights.pooledWidth).count } ?? 0
        #expect(g.weights.tensors.count == ViTWeights.expectedShapes(g.config).count + pooled)
        #expect((g.file.entries["expected.pooled"] != nil) == (g.weights.pooledHead != nil), "\(fileName): pooled head \(String(describing: g.weights.pooledHead))")
    }

    /// fp32: every block's output and `forward_features` within 1e-4 relative of timm's (the
    /// arithmetic is the same up to summation order: fp32 sums land near 1e-6, and the rotary
    /// tables round their f32 angles once more than PyTorch's sin/cos at most); the attention
    /// pool's output (PE) likewise.
    @Test(arguments: files)
    func fp32MatchesTimm(_ fileName: String) throws {
        let g = try ViTGolden(Self.dir.appendingPathComponent(fileName).path)
        let ctx = try makeContext()
        for (name, err) in try vitErrors(g, precision: .fp32, ctx: ctx) {
            #expect(err <= 1e-4, "\(fileName) \(name): relative error \(err)")
            if ProcessInfo.processInfo.environment["VKPROBE_PRINT_ERRORS"] != nil { print("\(fileName) \(name) fp32 \(err)") }
        }
        if g.file.entries["expected.pooled"] != nil {
            let vit = try VisionTransformer(weights: g.weights, ctx: ctx, precision: .fp32)
            let out = try vit.forward(try ctx.tensor(g.images, g.imageShape), taps: [.norm])
            let pooled = try #require(try vit.pooled(out[.norm]!), "\(fileName): the attention pool was not loaded")
            let err = relativeError(try ctx.read(pooled), try g.file.floats("expected.pooled"))
            #expect(err <= 1e-4, "\(fileName) pooled: relative error \(err)")
        }
        expectNoValidationMessages(ctx)
    }

    /// fp16 storage: the bound of `ViTGoldenTests.fp16WithinItsBound` — √2·u per GEMM'd branch,
    /// (blocks + 1) branches — doubled for these families, whose blocks round twice as many
    /// operands to f16 per branch (a gated MLP's product, a sub-LN's input, a rotated q and k).
    @Test(.enabled(if: deviceHas16BitStorage, "16-bit storage"), arguments: files)
    func fp16WithinItsBound(_ fileName: String) throws {
        let g = try ViTGolden(Self.dir.appendingPathComponent(fileName).path)
        let ctx = try makeContext()
        let u = 1.0 / 2048
        for (name, err) in try vitErrors(g, precision: .fp16, ctx: ctx) {
            let blocks = name == "norm" ? g.config.depth + 1 : Int(name.dropFirst("block.".count))! + 1
            let bound = 2 * 2.0.squareRoot() * u * Double(blocks + 1)
            #expect(err <= bound, "\(fileName) \(name) fp16: relative error \(err), bound \(bound)")
        }
        expectNoValidationMessages(ctx)
    }
}
