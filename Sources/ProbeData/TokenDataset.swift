import Foundation
import SafeTensors

/// Errors reading or writing datasets: they name the file and what to do.
public struct DataError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// What a token file says about its tokens (`vkprobe.tokens` metadata, written by `vkprobe
/// extract`): the model, where its tokens were taken, and which positions were which.
public struct TokenSetInfo: Codable, Sendable, Equatable {
    public var model: String
    /// `block<i>` (from 0, no final norm) or `norm`.
    public var tap: String
    /// The backbone's output had [CLS] (now in `cls`) and this many registers (in `registers`);
    /// `tokens` holds the patches, row-major over gridH × gridW (after the [CLS] with `clsInTokens`).
    public var cls: Bool
    public var registers: Int
    public var gridH: Int
    public var gridW: Int
    public var precision: String
    /// Augmented views per image, view-major (sample v·S + i is view v of image i); nil: one.
    public var views: Int?
    /// What `cls` holds when it is not the [CLS] token itself: `proj` (CLIP's projected [CLS],
    /// `clsDim` wide) or `map` (SigLIP's attention-pooled output); nil: the [CLS] token.
    public var clsSource: String?
    public var clsDim: Int?
    /// `tokens` begins with the [CLS] token, then the patches (1 + gridH·gridW): what upstream
    /// feeds from open_clip's timm-trunk towers (`forward_features`); nil: the patches only.
    public var clsInTokens: Bool?
    /// The tokens went through CLIP's projection (`--tokens projected`: upstream's `NAME_all` on
    /// open_clip's CLIP towers), `clsDim` wide like `cls`; nil: the backbone's own width.
    public var tokensProjected: Bool?
    public init(model: String, tap: String, cls: Bool, registers: Int, gridH: Int, gridW: Int, precision: String, views: Int? = nil,
                clsSource: String? = nil, clsDim: Int? = nil, clsInTokens: Bool? = nil, tokensProjected: Bool? = nil) {
        self.model = model; self.tap = tap; self.cls = cls; self.registers = registers; self.gridH = gridH; self.gridW = gridW; self.precision = precision
        self.views = views; self.clsSource = clsSource; self.clsDim = clsDim; self.clsInTokens = clsInTokens; self.tokensProjected = tokensProjected
    }
    /// Tokens per sample in `tokens`.
    public var tokenCount: Int { gridH * gridW + (clsInTokens == true ? 1 : 0) }
    static let key = "vkprobe.tokens"
}

/// A token dataset: one safetensors file, or a set of shards read as one (a directory of
/// `*.safetensors`, in name order), each with `tokens` (S, N, D) f32 or f16, `labels` (S,)
/// i32/i64, and optionally `cls` (S, D) and `registers` (S, R, D). Memory-mapped; batches are
/// gathered on demand.
public final class TokenDataset {
    /// The file or directory given.
    public let path: String
    public let files: [SafeTensorsFile]
    public let samples: Int
    public let tokens: Int
    public let dim: Int
    public let labels: [Int32]
    public let hasCLS: Bool
    /// The width of `cls` (the tokens' D, or CLIP's projection width).
    public let clsDim: Int
    /// What `vkprobe extract` recorded, when it wrote the files.
    public let info: TokenSetInfo?
    /// First global sample index of each file.
    private let starts: [Int]

    /// Largest class count accepted (labels are class indices below it).
    public static let maxClasses = 1 << 20

    public init(path: String) throws {
        self.path = path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw DataError("\(path): no such file or directory") }
        let paths: [String]
        if isDir.boolValue {
            paths = try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(".safetensors") && !$0.contains(".tmp-") }
                .sorted().map { URL(fileURLWithPath: path).appendingPathComponent($0).path }
            guard !paths.isEmpty else { throw DataError("\(path): a directory without token files (*.safetensors)") }
        } else {
            paths = [path]
        }
        files = try paths.map { try SafeTensorsFile(path: $0) }
        var total = 0, starts: [Int] = [], labels: [Int32] = []
        var shape: (Int, Int)?, cls: Bool?, info: TokenSetInfo?, clsWidth: Int?
        for f in files {
            guard let t = f.entries["tokens"] else {
                throw DataError("\(f.path): no `tokens` tensor (expected tokens (S, N, D) f32/f16 and labels (S,) i32/i64; found \(f.names.joined(separator: ", ")))")
            }
            guard t.shape.count == 3, t.dtype == .F32 || t.dtype == .F16 else {
                throw DataError("\(f.path): `tokens` must be (S, N, D) f32 or f16, found \(t.dtype.rawValue) \(t.shape)")
            }
            let s = t.shape[0]
            guard let l = f.entries["labels"], l.shape == [s], l.dtype == .I32 || l.dtype == .I64 else {
                throw DataError("\(f.path): `labels` must be (\(s),) i32 or i64 to match tokens \(t.shape)")
            }
            if let (n, d) = shape, n != t.shape[1] || d != t.shape[2] {
                throw DataError("\(f.path): tokens (N, D) = (\(t.shape[1]), \(t.shape[2])) differ from the set's (\(n), \(d)) in \(files[0].path)")
            }
            shape = (t.shape[1], t.shape[2])
            let raw = try f.ints("labels")
            if let bad = raw.enumerated().first(where: { $0.element < 0 || $0.element >= Self.maxClasses }) {
                throw DataError("\(f.path): label \(bad.element) of sample \(bad.offset) is outside [0, \(Self.maxClasses)); labels must be class indices from 0")
            }
            let hasCLS = f.entries["cls"] != nil
            // `cls` may be wider or narrower than the tokens (CLIP's projected [CLS]).
            if let c = f.entries["cls"], c.shape.count != 2 || c.shape[0] != s || c.shape[1] < 1 || !(c.dtype == .F32 || c.dtype == .F16) {
                throw DataError("\(f.path): `cls` must be (\(s), C) f32 or f16, found \(c.dtype.rawValue) \(c.shape)")
            }
            if let c = cls, c != hasCLS { throw DataError("\(f.path): has\(hasCLS ? "" : " no") `cls`, unlike \(files[0].path)") }
            if let c = f.entries["cls"] {
                if let w = clsWidth, w != c.shape[1] { throw DataError("\(f.path): `cls` is \(c.shape[1]) wide, unlike \(files[0].path) (\(w))") }
                clsWidth = c.shape[1]
            }
            cls = hasCLS
            if let json = f.metadata[TokenSetInfo.key] {
                guard let i = try? JSONDecoder().decode(TokenSetInfo.self, from: Data(json.utf8)) else {
                    throw DataError("\(f.path): unreadable \(TokenSetInfo.key) metadata")
                }
                if let prev = info, prev != i { throw DataError("\(f.path): tokens of \(i.model) at \(i.tap), unlike \(files[0].path) (\(prev.model) at \(prev.tap))") }
                info = i
            }
            starts.append(total)
            total += s
            labels += raw.map { Int32($0) }
        }
        guard let (n, d) = shape, total > 0, n > 0, d > 0 else { throw DataError("\(path): the dataset is empty") }
        samples = total; tokens = n; dim = d; self.labels = labels; hasCLS = cls ?? false; self.info = info; self.starts = starts
        clsDim = clsWidth ?? d
    }

    /// Checks labels lie in [0, classes).
    public func validateLabels(classes: Int) throws {
        if let bad = labels.enumerated().first(where: { $0.element < 0 || Int($0.element) >= classes }) {
            throw DataError("\(path): label \(bad.element) of sample \(bad.offset) is outside [0, \(classes)); pass --classes or fix the labels")
        }
    }

    public var classCount: Int { Int(labels.max() ?? 0) + 1 }

    /// Augmented views per image (`vkprobe extract --views`, `train --cache-tokens --views`).
    public var views: Int { info?.views ?? 1 }

    /// Tokens of `indices` as (B, N, D) Float, row-major.
    public func gatherTokens(_ indices: [Int]) throws -> [Float] { try gather("tokens", indices, rowElements: tokens * dim) }
    /// [CLS] of `indices` as (B, D).
    public func gatherCLS(_ indices: [Int]) throws -> [Float] { try gather("cls", indices, rowElements: clsDim) }

    /// The file holding global sample `i`, and its index there.
    func locate(_ i: Int) -> (Int, Int) {
        var lo = 0, hi = starts.count - 1
        while lo < hi { let mid = (lo + hi + 1) / 2; if starts[mid] <= i { lo = mid } else { hi = mid - 1 } }
        return (lo, i - starts[lo])
    }

    private func gather(_ name: String, _ indices: [Int], rowElements: Int) throws -> [Float] {
        var out = [Float](repeating: 0, count: indices.count * rowElements)
        // Group by file so that each file's bytes are visited once per batch.
        var byFile: [Int: [(row: Int, local: Int)]] = [:]
        for (row, i) in indices.enumerated() {
            guard i >= 0, i < samples else { throw DataError("\(path): sample \(i) of \(samples)") }
            let (f, local) = locate(i)
            byFile[f, default: []].append((row, local))
        }
        for (f, rows) in byFile {
            let e = try files[f].entry(name)
            try files[f].withBytes(name) { raw in
                out.withUnsafeMutableBufferPointer { dst in
                    for (row, local) in rows {
                        let base = local * rowElements
                        if e.dtype == .F32 {
                            for k in 0..<rowElements { dst[row * rowElements + k] = raw.loadUnaligned(fromByteOffset: (base + k) * 4, as: Float.self) }
                        } else {
                            for k in 0..<rowElements { dst[row * rowElements + k] = Float(Float16(bitPattern: raw.loadUnaligned(fromByteOffset: (base + k) * 2, as: UInt16.self))) }
                        }
                    }
                }
            }
        }
        return out
    }
}
