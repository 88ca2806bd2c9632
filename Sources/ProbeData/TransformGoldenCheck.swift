import Foundation
import SafeTensors

/// Checks a transform golden (`Bench/tools/make_transform_goldens.py`, over its own images or a
/// folder of yours) against our decoder and eval transform: every file PIL decodes must decode
/// to exactly PIL's pixels and transform to torchvision's tensor within one 8-bit level; every
/// file PIL refuses must be refused. `vkprobe check-transforms` prints the rows.
public enum TransformGoldenCheck {
    public struct Row: Sendable {
        public enum Outcome: Sendable, Equatable {
            /// Pixels exact; the eval transform's largest difference, in 8-bit levels.
            case same(evalLevels: Double)
            case bothRefused(pil: String, ours: String)
            case pixelsDiffer(count: Int, of: Int)
            case sizeDiffers(ours: String, pil: String)
            case evalOff(levels: Double)
            case weRefused(String)
            case pilRefused(String)
        }
        public var file: String
        public var outcome: Outcome
        public var ok: Bool {
            switch outcome { case .same, .bothRefused: return true; default: return false }
        }
        public var line: String {
            switch outcome {
            case let .same(l): return "ok       \(file) (eval within \(String(format: "%.2f", l)) level)"
            case let .bothRefused(pil, ours): return "refused  \(file): by PIL too (PIL: \(pil); here: \(ours))"
            case let .pixelsDiffer(c, n): return "DIFFERS  \(file): \(c) of \(n) decoded values differ from PIL's"
            case let .sizeDiffers(o, p): return "DIFFERS  \(file): decoded \(o), PIL \(p)"
            case let .evalOff(l): return "DIFFERS  \(file): eval transform off by \(String(format: "%.2f", l)) levels (bound 1)"
            case let .weRefused(r): return "DIFFERS  \(file): PIL decodes it, refused here: \(r)"
            case let .pilRefused(p): return "DIFFERS  \(file): PIL refuses it (\(p)), decoded here"
            }
        }
    }

    /// The rows of one golden file, in its order.
    public static func run(golden path: String) throws -> [Row] {
        let f = try SafeTensorsFile(path: path)
        let base = URL(fileURLWithPath: path).deletingLastPathComponent()
        let keys = f.metadata.keys.filter { $0.hasPrefix("file.") }.compactMap { Int($0.dropFirst("file.".count)) }.sorted()
        guard !keys.isEmpty else { throw DataError("\(path): no `file.<k>` entries: not a transform golden") }
        let decoder = ImageDecoder()
        let family = f.metadata["family"].flatMap(TransformFamily.init(rawValue:)) ?? .mae
        func stats(_ key: String) -> [Float]? { f.metadata[key].flatMap { try? JSONDecoder().decode([Float].self, from: Data($0.utf8)) } }
        let norm = stats("mean").flatMap { m in stats("std").map { Normalization(mean: m, std: $0) } } ?? .imageNet
        return try keys.map { k -> Row in
            let raw = f.metadata["file.\(k)"]!
            let name = (try? JSONDecoder().decode(String.self, from: Data(raw.utf8))) ?? raw
            let url = name.hasPrefix("/") ? URL(fileURLWithPath: name) : base.appendingPathComponent(name)
            let ours = Result { try decoder.decode(contentsOf: url) }
            if let pil = f.metadata["refused.\(k)"] {
                switch ours {
                case .success: return Row(file: name, outcome: .pilRefused(pil))
                case let .failure(e): return Row(file: name, outcome: .bothRefused(pil: pil, ours: "\(e)"))
                }
            }
            let image: RGBImage
            switch ours {
            case let .failure(e): return Row(file: name, outcome: .weRefused("\(e)"))
            case let .success(i): image = i
            }
            guard let size = f.metadata["size.\(k)"].flatMap(Int.init), size > 0, size <= 4096 else { throw DataError("\(path): size.\(k) missing or out of range") }
            let shape = try f.entry("decoded.\(k)").shape
            guard shape == [image.height, image.width, 3] else {
                return Row(file: name, outcome: .sizeDiffers(ours: "\(image.width)×\(image.height)", pil: shape.count == 3 ? "\(shape[1])×\(shape[0])" : "\(shape)"))
            }
            let decoded = try f.ints("decoded.\(k)")
            let differing = zip(image.pixels, decoded).filter { Int($0) != $1 }.count
            if differing > 0 { return Row(file: name, outcome: .pixelsDiffer(count: differing, of: decoded.count)) }
            let mine = norm.tensor(family.transforms(size: size).eval(image))
            let want = try f.floats("eval.\(k)")
            guard mine.count == want.count else { return Row(file: name, outcome: .evalOff(levels: .infinity)) }
            let n = size * size
            var worst = 0.0
            for i in mine.indices { worst = max(worst, Double(abs(mine[i] - want[i]) * norm.std[i / n]) * 255) }
            // One level, plus the fp32 rounding of (x/255 − mean)/std, re-scaled (≲ 1e-4 level).
            return Row(file: name, outcome: worst <= 1 + 1e-4 ? .same(evalLevels: worst) : .evalOff(levels: worst))
        }
    }
}
