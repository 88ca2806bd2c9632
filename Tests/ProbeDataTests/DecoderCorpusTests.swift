import Foundation
import ProbeTestSupport
import Testing
@testable import ProbeData

/// Every file of `Bench/tools/make_decode_corpus.py`'s corpus (JPEG and PNG variants written by
/// PIL, by a raw PNG writer and by cjpeg; libjpeg-warning files; what PIL refuses) decodes to
/// exactly PIL's `convert("RGB")` pixels, and the eval transform to torchvision's within one
/// 8-bit level (PIL's resize rounds its fixed-point filter sums once per pass; ours follows it
/// and may land one level off where a sum sits on a rounding edge) — or is refused where PIL
/// refuses it.
@Suite struct DecoderCorpusTests {
    static let python = "/usr/bin/python3"

    static func corpus() throws -> (URL, [[String: Any]]) {
        let out = try temporaryDirectory("decode-corpus")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Bench/tools/make_decode_corpus.py")
        let run = try runProgram(URL(fileURLWithPath: python), [script.path, out.path, "--eval-size", "16"], environment: ProcessInfo.processInfo.environment)
        guard run.status == 0 else {
            throw CLIError("make_decode_corpus.py failed (needs Pillow and cjpeg: apt install python3-pil libjpeg-turbo-progs, as `make test` does):\n\(run.stderr)")
        }
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("manifest.json"))) as! [String: Any]
        return (out, json["files"] as! [[String: Any]])
    }

    @Test func decodesAsPILDoes() throws {
        let (dir, files) = try Self.corpus()
        #expect(files.count >= 55)
        let decoder = ImageDecoder()
        var decoded = 0, refused = 0, warned: [String] = []
        for entry in files {
            let name = entry["file"] as! String
            let url = dir.appendingPathComponent(name)
            let ours = Result { try decoder.decode(contentsOf: url) }
            guard entry["pil"] as? String == "ok" else {
                if case let .success(img) = ours { Issue.record("\(name): PIL refuses it (\(entry["pil"]!)), we decoded \(img.width)×\(img.height)") }
                refused += 1
                continue
            }
            let img: RGBImage
            switch ours {
            case let .failure(error): Issue.record("\(name): PIL decodes it, we refused: \(error)"); continue
            case let .success(i): img = i
            }
            if let w = decoder.lastWarning { warned.append("\(name): \(w)") }
            let expected = try [UInt8](Data(contentsOf: URL(fileURLWithPath: url.path + ".rgb")))
            #expect(img.width == entry["width"] as? Int && img.height == entry["height"] as? Int, "\(name): size")
            let differing = zip(img.pixels, expected).filter { $0 != $1 }.count
            #expect(img.pixels.count == expected.count && differing == 0, "\(name) (PIL mode \(entry["mode"] ?? "?")): \(differing) of \(expected.count) values differ from PIL's")
            let eval = EvalTransform(size: 16)(img).pixels
            let pilEval = try [UInt8](Data(contentsOf: URL(fileURLWithPath: url.path + ".eval.rgb")))
            let worst = zip(eval, pilEval).map { abs(Int($0) - Int($1)) }.max() ?? 99
            #expect(eval.count == pilEval.count && worst <= 1, "\(name): eval transform off by \(worst) levels")
            decoded += 1
        }
        #expect(decoded >= 45 && refused >= 10)
        // The four files with extraneous bytes before a marker decode with libjpeg's warning.
        #expect(warned.filter { $0.contains("extraneous bytes before marker") }.count == 4, "\(warned)")
    }
}
