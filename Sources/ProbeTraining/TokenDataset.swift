import Foundation
import ProbeHeads
import SafeTensors

/// A token dataset: a safetensors file with `tokens` (S, N, D) f32 or f16, `labels` (S,) i32 or
/// i64, and optionally `cls` (S, D). Memory-mapped; batches are gathered on demand.
public final class TokenDataset {
    public let path: String
    public let file: SafeTensorsFile
    public let samples: Int
    public let tokens: Int
    public let dim: Int
    public let labels: [Int32]
    public let hasCLS: Bool

    public init(path: String) throws {
        self.path = path
        file = try SafeTensorsFile(path: path)
        guard let t = file.entries["tokens"] else {
            throw TrainingError("\(path): no `tokens` tensor (expected tokens (S, N, D) f32/f16 and labels (S,) i32/i64; found \(file.names.joined(separator: ", ")))")
        }
        guard t.shape.count == 3, t.dtype == .F32 || t.dtype == .F16 else {
            throw TrainingError("\(path): `tokens` must be (S, N, D) f32 or f16, found \(t.dtype.rawValue) \(t.shape)")
        }
        guard let l = file.entries["labels"], l.shape == [t.shape[0]], l.dtype == .I32 || l.dtype == .I64 else {
            throw TrainingError("\(path): `labels` must be (\(t.shape[0]),) i32 or i64 to match tokens \(t.shape)")
        }
        samples = t.shape[0]; tokens = t.shape[1]; dim = t.shape[2]
        let raw = try file.ints("labels")
        if let bad = raw.enumerated().first(where: { $0.element < 0 || $0.element >= Self.maxClasses }) {
            throw TrainingError("\(path): label \(bad.element) of sample \(bad.offset) is outside [0, \(Self.maxClasses)); labels must be class indices from 0")
        }
        labels = raw.map { Int32($0) }
        if let c = file.entries["cls"] {
            guard c.shape == [samples, dim], c.dtype == .F32 || c.dtype == .F16 else {
                throw TrainingError("\(path): `cls` must be (\(samples), \(dim)) f32 or f16, found \(c.dtype.rawValue) \(c.shape)")
            }
            hasCLS = true
        } else { hasCLS = false }
        guard samples > 0, tokens > 0, dim > 0 else { throw TrainingError("\(path): the dataset is empty (tokens \(t.shape))") }
    }

    /// Largest class count accepted (labels are class indices below it).
    public static let maxClasses = 1 << 20

    /// Checks labels lie in [0, classes).
    public func validateLabels(classes: Int) throws {
        if let bad = labels.enumerated().first(where: { $0.element < 0 || Int($0.element) >= classes }) {
            throw TrainingError("\(path): label \(bad.element) of sample \(bad.offset) is outside [0, \(classes)); pass --classes or fix the labels")
        }
    }

    public var classCount: Int { Int(labels.max() ?? 0) + 1 }

    /// Tokens of `indices` as (B, N, D) Float, row-major.
    public func gatherTokens(_ indices: [Int]) throws -> [Float] { try gather("tokens", indices, rowElements: tokens * dim) }
    /// [CLS] of `indices` as (B, D).
    public func gatherCLS(_ indices: [Int]) throws -> [Float] { try gather("cls", indices, rowElements: dim) }

    private func gather(_ name: String, _ indices: [Int], rowElements: Int) throws -> [Float] {
        let e = try file.entry(name)
        var out = [Float](repeating: 0, count: indices.count * rowElements)
        try file.withBytes(name) { raw in
            out.withUnsafeMutableBufferPointer { dst in
                for (row, i) in indices.enumerated() {
                    let base = i * rowElements
                    if e.dtype == .F32 {
                        for k in 0..<rowElements { dst[row * rowElements + k] = raw.loadUnaligned(fromByteOffset: (base + k) * 4, as: Float.self) }
                    } else {
                        for k in 0..<rowElements { dst[row * rowElements + k] = Float(Float16(bitPattern: raw.loadUnaligned(fromByteOffset: (base + k) * 2, as: UInt16.self))) }
                    }
                }
            }
        }
        return out
    }
}

public struct TrainingError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// Seeded shuffles and low-shot subsets (Fisher–Yates over `InitRNG`), reproducible across runs
/// and resumes: one independent stream per (seed, stream), e.g. per epoch.
public struct SeededOrder {
    var rng: InitRNG
    public init(seed: UInt64, stream: UInt64) { rng = InitRNG(seed: seed &* 0x9E37_79B9_7F4A_7C15 ^ (stream &+ 0xD1B5_4A32_D192_ED03)) }
    mutating func next() -> UInt64 { rng.next() }
    mutating func normal() -> Float { Float(rng.normal()) }
    public mutating func shuffle(_ a: inout [Int]) {
        guard a.count > 1 else { return }
        for i in stride(from: a.count - 1, to: 0, by: -1) { a.swapAt(i, Int(next() % UInt64(i + 1))) }
    }

    /// K samples per class (`shots`) or a fraction P of each class, chosen with `seed`.
    public static func subset(labels: [Int32], shots: Int?, fraction: Double?, seed: UInt64) -> [Int] {
        guard shots != nil || fraction != nil else { return Array(labels.indices) }
        var byClass: [Int32: [Int]] = [:]
        for (i, l) in labels.enumerated() { byClass[l, default: []].append(i) }
        var order = SeededOrder(seed: seed, stream: 0x5EED)
        var chosen: [Int] = []
        for c in byClass.keys.sorted() {
            var members = byClass[c]!
            order.shuffle(&members)
            let k = shots ?? max(1, Int((Double(members.count) * fraction!).rounded()))
            chosen += members.prefix(k)
        }
        return chosen.sorted()
    }
}
