import Foundation
import ProbeBackbones
import ProbeKernels
import ProbeTestSupport
import SafeTensors
import Testing

/// A timm VisionTransformer golden (`vit_<family>_<tag>`): random weights under timm's names, the
/// constructor arguments as `config`, normalised images, and every block's output (no final norm)
/// and the final norm's, computed by timm in fp32.
struct ViTGolden {
    let file: SafeTensorsFile
    let config: ViTConfig
    let weights: ViTWeights
    let images: [Float]
    let imageShape: [Int]

    init(_ path: String) throws {
        file = try SafeTensorsFile(path: path)
        guard let json = file.metadata["config"] else { throw BackboneError("\(path): no `config` metadata") }
        config = try ViTConfig.fromTimmArguments(json)
        weights = try ViTWeights(config: config, file: file, model: "golden \(URL(fileURLWithPath: path).lastPathComponent)") {
            $0.hasPrefix("expected.") || $0.hasPrefix("input.")
        }
        images = try file.floats("input.image")
        imageShape = try file.entry("input.image").shape
    }
}

/// Runs a golden's model and returns its relative errors by output (`block.<i>`, `norm`).
func vitErrors(_ g: ViTGolden, precision: Precision, ctx: KernelContext) throws -> [(String, Double)] {
    let vit = try VisionTransformer(weights: g.weights, ctx: ctx, precision: precision)
    let blocks = vit.firstTappableBlock..<g.config.depth
    let taps = Set(blocks.map { TokenTap.block($0) } + [.norm])
    let out = try vit.forward(try ctx.tensor(g.images, g.imageShape), taps: taps)
    var errors: [(String, Double)] = []
    for i in blocks {
        errors.append(("block.\(i)", relativeError(try ctx.read(out[.block(i)]!), try g.file.floats("expected.block.\(i)"))))
    }
    errors.append(("norm", relativeError(try ctx.read(out[.norm]!), try g.file.floats("expected.norm"))))
    return errors
}

@Suite(.serialized) struct ViTGoldenTests {
    static let files = goldenFiles { $0 == .vit }

    @Test func vitGoldensArePresent() { #expect(!Self.files.isEmpty, "no vit_*.safetensors in \(goldensDirectory.path)") }

    /// fp32: every block's output within 1e-4 relative of timm's (summation order only).
    @Test(arguments: files)
    func fp32MatchesTimm(_ fileName: String) throws {
        let g = try ViTGolden(goldensDirectory.appendingPathComponent(fileName).path)
        let ctx = try makeContext()
        for (name, err) in try vitErrors(g, precision: .fp32, ctx: ctx) {
            #expect(err <= 1e-4, "\(fileName) \(name): relative error \(err)")
        }
        expectNoValidationMessages(ctx)
    }

    /// fp16 storage (weights and activations; f32 accumulation and residual stream). Each GEMM
    /// reads operands rounded to f16 (unit roundoff u = 2⁻¹¹, relative rms u/√3 per operand), so
    /// its output carries about √2·u relative error; block i's output holds the patch embedding and
    /// i + 1 blocks' branches, each with that error: bound √2·u·(i + 2) (the final norm: as after
    /// the last block, plus one). Measured: 1e-4 to 3e-4, a fifth of the bound or less.
    @Test(.enabled(if: deviceHas16BitStorage, "16-bit storage"), arguments: files)
    func fp16WithinItsBound(_ fileName: String) throws {
        let g = try ViTGolden(goldensDirectory.appendingPathComponent(fileName).path)
        let ctx = try makeContext()
        let u = 1.0 / 2048
        for (name, err) in try vitErrors(g, precision: .fp16, ctx: ctx) {
            let blocks = name == "norm" ? g.config.depth + 1 : Int(name.dropFirst("block.".count))! + 1
            let bound = 2.0.squareRoot() * u * Double(blocks + 1)
            #expect(err <= bound, "\(fileName) \(name) fp16: relative error \(err), bound \(bound)")
        }
        expectNoValidationMessages(ctx)
    }
}
