import Foundation
import ProbeData
import ProbeTestSupport
import SafeTensors
import Testing

/// `transform_<tag>` goldens: JPEGs with PIL's decoded pixels and torchvision's evaluation
/// transform (Resize(int(S·256/224), bicubic) → CenterCrop(S) → ToTensor → Normalize(ImageNet)).
@Suite struct TransformGoldenTests {
    static let files = goldenFiles { $0 == .transform }

    @Test func transformGoldensArePresent() { #expect(!Self.files.isEmpty, "no transform_*.safetensors in \(goldensDirectory.path)") }

    @Test(arguments: files)
    func decodeAndEvalTransformMatchTorchvision(_ fileName: String) throws {
        let f = try SafeTensorsFile(path: goldensDirectory.appendingPathComponent(fileName).path)
        let keys = f.names.filter { $0.hasPrefix("decoded.") }.map { String($0.dropFirst("decoded.".count)) }
        #expect(!keys.isEmpty)
        for k in keys {
            let jpeg = try #require(metaString(f, "file.\(k)"))
            let size = try #require(f.metadata["size.\(k)"].flatMap(Int.init))
            let image = try ImageDecoder.decode(try Data(contentsOf: goldensDirectory.appendingPathComponent(jpeg)), name: jpeg)
            // Decoded pixels: exactly PIL's.
            let decoded = try f.ints("decoded.\(k)")
            #expect(try f.entry("decoded.\(k)").shape == [image.height, image.width, 3], "\(jpeg) size")
            let mismatches = zip(image.pixels, decoded).filter { Int($0) != $1 }.count
            #expect(mismatches == 0, "\(jpeg): \(mismatches) of \(decoded.count) decoded samples differ from PIL's")
            // Eval transform: within one 8-bit level at every pixel.
            let norm = Normalization.imageNet
            let ours = norm.tensor(EvalTransform(size: size)(image))
            let want = try f.floats("eval.\(k)")
            #expect(ours.count == want.count)
            let n = size * size
            var worst = 0.0
            for i in ours.indices { worst = max(worst, Double(abs(ours[i] - want[i]) * norm.std[i / n]) * 255) }
            #expect(worst <= 1.0 + 1e-4, "\(jpeg): eval transform differs by \(worst) levels")
        }
    }
}

func metaString(_ f: SafeTensorsFile, _ key: String) -> String? { f.metadata[key]?.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }

/// open_clip's eval transforms (CLIP: Resize(S) + CenterCrop(S); SigLIP: squashed to S × S, with
/// their statistics; `squash` and `pe` as open_clip builds them from the pretrained configs of
/// ViT-bigG-14-worldwide-378 and PE-Core-L-14-336: squashed, bicubic and bilinear) on the
/// repository's goldens (`Tests/Goldens/transforms`, written by `make_transform_goldens.py --family
/// clip|siglip|squash|pe --small` with open_clip; clip and siglip with Pillow 12, squash and pe 13):
/// exact pixels, eval within one 8-bit level; the nearest other transform on the same files is not.
@Suite struct FamilyTransformTests {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Goldens/transforms")

    @Test(arguments: ["clip", "siglip", "squash", "pe"])
    func openCLIPTransforms(_ family: String) throws {
        let path = Self.dir.appendingPathComponent("transform_\(family).safetensors").path
        let rows = try TransformGoldenCheck.run(golden: path)
        #expect(rows.count == 4)
        for row in rows { #expect(row.ok, "\(row.line)") }
        // The check tells the transforms apart: the nearest wrong one on the same images is off
        // (MAE's for CLIP and SigLIP, CLIP's crop for the squash, bicubic for PE's bilinear).
        let f = try SafeTensorsFile(path: path)
        #expect(f.metadata["family"] == family)
        func stats(_ key: String) throws -> [Float] { try JSONDecoder().decode([Float].self, from: Data(try #require(f.metadata[key]).utf8)) }
        let norm = Normalization(mean: try stats("mean"), std: try stats("std"))
        var worst = 0.0
        for k in 0..<rows.count {
            let image = try ImageDecoder().decode(contentsOf: Self.dir.appendingPathComponent(try #require(metaString(f, "file.\(k)"))))
            let size = try #require(f.metadata["size.\(k)"].flatMap(Int.init))
            let nearest: EvalTransform = switch family {
            case "squash": TransformFamily.clip.transforms(size: size).eval
            case "pe": TransformFamily.squash.transforms(size: size).eval
            default: EvalTransform(size: size)
            }
            let wrong = norm.tensor(nearest(image)), want = try f.floats("eval.\(k)")
            worst = max(worst, zip(wrong, want).enumerated().map { Double(abs($1.0 - $1.1) * norm.std[$0 / (size * size)]) * 255 }.max() ?? 0)
        }
        #expect(worst > 2, "\(family): the nearest other transform within \(worst) levels of open_clip's")
    }
}
