import Foundation
import SafeTensors

/// Pixels of a batch of images, all H × W.
public enum ImagePixels: Sendable {
    /// (n, 3, H, W) f32, already normalised.
    case normalized([Float])
    /// (n, H, W, 3) interleaved bytes, normalised on the device with the source's `normalization`.
    case rgb8([UInt8])
}

/// An image that could not be used, and why (the run goes on without it).
public struct SkippedImage: Sendable, Hashable, Codable {
    public var index: Int
    public var name: String
    public var reason: String

    /// An error's text as the reason next to `name`: without the name (or a path ending in it)
    /// the decoder put in front, so the log says `x.jpg: not a JPEG…`, not `x.jpg: x.jpg: …`.
    public static func reason(_ error: String, name: String) -> String {
        guard let colon = error.range(of: ": ") else { return error }
        let head = error[..<colon.lowerBound]
        return head == name || head.hasSuffix("/" + name) ? String(error[colon.upperBound...]) : error
    }
}

/// A batch as a source delivers it: the images that loaded, in the order asked for.
public struct ImageBatch: Sendable {
    /// Source indices of the images in `pixels`.
    public var indices: [Int]
    public var labels: [Int32]
    public var pixels: ImagePixels
    public var skipped: [SkippedImage]
    /// Images decoded through libjpeg warnings (in the batch; `reason` is the warning).
    public var warnings: [SkippedImage]
    public var count: Int { indices.count }
    public init(indices: [Int], labels: [Int32], pixels: ImagePixels, skipped: [SkippedImage] = [], warnings: [SkippedImage] = []) {
        self.indices = indices; self.labels = labels; self.pixels = pixels; self.skipped = skipped; self.warnings = warnings
    }
}

/// Batches delivered in order; the source may prepare later ones while earlier ones are used.
/// Stopping early (dropping it) stops its workers.
public final class ImageBatchStream {
    let nextBatch: () throws -> ImageBatch?
    let stop: () -> Void
    public init(next: @escaping () throws -> ImageBatch?, stop: @escaping () -> Void = {}) { nextBatch = next; self.stop = stop }
    deinit { stop() }
    public func next() throws -> ImageBatch? { try nextBatch() }
}

/// Labelled images for a backbone, all of one size.
public protocol ImageSource: AnyObject {
    var count: Int { get }
    /// Height and width of every image this source yields.
    var height: Int { get }
    var width: Int { get }
    /// What the images are (for logs, manifests and errors).
    var description: String { get }
    /// Mean and std applied to `.rgb8` pixels.
    var normalization: Normalization { get }
    func label(_ i: Int) -> Int32
    /// The batches listed (source indices), in order; `epoch` seeds any augmentation.
    func load(_ batches: [[Int]], epoch: Int) -> ImageBatchStream
}

extension ImageSource {
    public var labels: [Int32] { (0..<count).map(label) }
}

/// A safetensors file of preprocessed images: `images` (S, 3, H, W) f32, already normalised, and
/// `labels` (S,) integer — for tests and users with their own preprocessing.
public final class SafeTensorsImages: ImageSource {
    public let path: String
    let file: SafeTensorsFile
    public let count: Int
    let labelValues: [Int32]
    public let height: Int
    public let width: Int
    public var description: String { "\(path) (\(count) images of \(height)×\(width), preprocessed)" }
    public var normalization: Normalization { .imageNet }   // unused: pixels come normalised

    public init(path: String) throws {
        self.path = path
        let f = try SafeTensorsFile(path: path)
        file = f
        guard let e = f.entries["images"], e.shape.count == 4, e.shape[1] == 3, e.dtype == .F32 else {
            throw DataError("\(path): expected `images` (S, 3, H, W) f32 and `labels` (S,); found \(f.names.map { "\($0) \(f.entries[$0]!.shape)" }.joined(separator: ", "))")
        }
        guard let l = f.entries["labels"], l.shape == [e.shape[0]], !l.dtype.isFloatingPoint else {
            throw DataError("\(path): `labels` must be (\(e.shape[0]),) integers to match images \(e.shape)")
        }
        count = e.shape[0]; height = e.shape[2]; width = e.shape[3]
        guard count > 0, height > 0, width > 0 else { throw DataError("\(path): no images (\(e.shape))") }
        let raw = try f.ints("labels")
        if let bad = raw.enumerated().first(where: { $0.element < 0 || $0.element >= TokenDataset.maxClasses }) {
            throw DataError("\(path): label \(bad.element) of image \(bad.offset) is outside [0, \(TokenDataset.maxClasses))")
        }
        labelValues = raw.map { Int32($0) }
    }

    public func label(_ i: Int) -> Int32 { labelValues[i] }

    public func load(_ batches: [[Int]], epoch: Int) -> ImageBatchStream {
        var k = 0
        let per = 3 * height * width
        return ImageBatchStream(next: { [self] in
            guard k < batches.count else { return nil }
            let idx = batches[k]
            k += 1
            let px = try file.withBytes("images") { raw in
                idx.flatMap { i in (i * per..<(i + 1) * per).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) } }
            }
            return ImageBatch(indices: idx, labels: idx.map(label), pixels: .normalized(px))
        })
    }
}

/// Writes token shards: per shard, `tokens` (S, P, D) patch tokens, `cls` (S, D) where the model
/// has [CLS], `registers` (S, R, D) where it has registers, `labels` (S,) i64, and the
/// `vkprobe.tokens` metadata; f16 or f32; atomically.
public struct TokenShard {
    public var info: TokenSetInfo
    public var dim: Int
    public var f16: Bool
    public private(set) var patches: [Float] = []
    public private(set) var cls: [Float] = []
    public private(set) var registers: [Float] = []
    public private(set) var labels: [Int64] = []
    /// The shard's images that could not be read or were decoded through warnings: kept in its
    /// metadata (`vkprobe.unreadable`) so that a resumed extraction still counts them.
    public var unreadable = ShardUnreadable()
    /// Whether the backbone's output begins with a [CLS] token (written as `cls` unless a pooled
    /// output replaces it).
    public var clsToken: Bool
    public init(info: TokenSetInfo, dim: Int, f16: Bool, clsToken: Bool? = nil) {
        self.info = info; self.dim = dim; self.f16 = f16; self.clsToken = clsToken ?? info.cls
    }

    public var count: Int { labels.count }

    /// Appends images' tokens (n, T, D) in the backbone's layout [CLS?][registers?][patches];
    /// `pooled` (n, C), when given, is written as `cls` instead of the [CLS] token (`info.clsSource`).
    public mutating func append(_ tokens: [Float], labels l: [Int32], pooled: [Float]? = nil) {
        let n = l.count, P = info.gridH * info.gridW, prefix = (clsToken ? 1 : 0) + info.registers, T = prefix + P
        precondition(tokens.count == n * T * dim, "tokens for \(n) images of \(T) × \(dim)")
        precondition(pooled == nil || pooled!.count == n * (info.clsDim ?? dim), "pooled outputs for \(n) images")
        if let pooled { cls += pooled }
        for i in 0..<n {
            let base = i * T * dim
            var at = base
            if clsToken {
                if pooled == nil && info.cls { cls += tokens[at..<(at + dim)] }
                if info.clsInTokens == true { patches += tokens[at..<(at + dim)] }
                at += dim
            }
            if info.registers > 0 { registers += tokens[at..<(at + info.registers * dim)]; at += info.registers * dim }
            patches += tokens[at..<(base + T * dim)]
        }
        labels += l.map(Int64.init)
    }

    public func write(to path: String, onTemporaryWritten: (() -> Void)? = nil) throws {
        var w = SafeTensorsWriter()
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys   // the same tokens give the same file
        let json = String(decoding: try encoder.encode(info), as: UTF8.self)
        w.metadata = [TokenSetInfo.key: json, "model": info.model, "tap": info.tap]
        if !unreadable.skipped.isEmpty || !unreadable.warned.isEmpty {
            w.metadata[ShardUnreadable.key] = String(decoding: try encoder.encode(unreadable), as: UTF8.self)
        }
        func add(_ name: String, _ v: [Float], _ shape: [Int]) { f16 ? w.add(name, float16: v, shape: shape) : w.add(name, v, shape: shape) }
        let S = count
        add("tokens", patches, [S, info.tokenCount, dim])
        if info.cls { add("cls", cls, [S, info.clsDim ?? dim]) }
        if info.registers > 0 { add("registers", registers, [S, info.registers, dim]) }
        w.add("labels", int64: labels, shape: [S])
        w.onTemporaryWritten = onTemporaryWritten
        try w.write(to: path)
    }
}

/// A shard's images left out (unreadable) or decoded through warnings.
public struct ShardUnreadable: Codable, Sendable, Equatable {
    public static let key = "vkprobe.unreadable"
    public var skipped: [SkippedImage] = []
    public var warned: [SkippedImage] = []
    public init() {}

    /// What a shard file recorded (nothing for shards without the key).
    public static func read(from path: String) -> ShardUnreadable {
        guard let f = try? SafeTensorsFile(path: path), let json = f.metadata[key],
              let v = try? JSONDecoder().decode(ShardUnreadable.self, from: Data(json.utf8)) else { return ShardUnreadable() }
        return v
    }
}
