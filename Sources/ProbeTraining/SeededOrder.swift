import Foundation
import ProbeHeads

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
