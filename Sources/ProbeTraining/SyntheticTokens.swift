import Foundation
import SafeTensors

/// A synthetic token task for demos and tests: the class is carried by two tokens at random places
/// among N. Each carries a fixed marker direction (one per slot, the same for every class) plus a
/// class direction; the other tokens are unit Gaussian noise, and every token of a sample shares a
/// random offset. The mean of the tokens (a linear probe's input) dilutes the class signal N/2
/// times; attention can find the marked tokens and read it undiluted.
public enum SyntheticTokens {
    public struct Spec: Sendable {
        public var samples: Int
        public var tokens = 64
        public var dim = 64
        public var classes = 10
        /// Norm of the class direction carried by each signal token.
        public var signal = 24.0
        /// Norm of the marker direction of each signal slot.
        public var marker = 300.0
        /// Standard deviation of the per-sample offset shared by all its tokens.
        public var sharedOffset = 4.0
        public var seed: UInt64 = 0
        public init(samples: Int) { self.samples = samples }

        /// Refuses sizes the task cannot have (two signal tokens at distinct places need two tokens).
        public func validate() throws {
            for (flag, value, least) in [("samples", samples, 1), ("--tokens", tokens, 2), ("--dim", dim, 1), ("--classes", classes, 2)] where value < least {
                throw TrainingError("\(flag) \(value): at least \(least)")
            }
            for (flag, value) in [("--signal", signal), ("--marker", marker), ("--offset", sharedOffset)] where !(value.isFinite && value >= 0) {
                throw TrainingError("\(flag) \(value): a finite number ≥ 0")
            }
        }
    }

    /// Writes `tokens` (S, N, D) f32, `labels` (S,) i32 and `cls` (S, D) (the mean token) to `path`.
    public static func write(_ spec: Spec, to path: String) throws {
        try spec.validate()
        var rng = SeededOrder(seed: spec.seed, stream: 0xC1A55)
        func normal() -> Float { rng.normal() }
        // Class directions are fixed by the task, not the split: a separate generator.
        var protoRNG = SeededOrder(seed: 1234, stream: 0xC1A55)
        func direction(_ norm: Double) -> [Float] {
            let v = (0..<spec.dim).map { _ in protoRNG.normal() }
            let n = v.map { $0 * $0 }.reduce(0, +).squareRoot()
            return v.map { $0 / n * Float(norm) }
        }
        let markers = [direction(spec.marker), direction(spec.marker)]
        // Slot k of class c carries markers[k] + class direction prototypes[2c + k].
        let prototypes = (0..<(2 * spec.classes)).map { i in zip(direction(spec.signal), markers[i % 2]).map { $0 + $1 } }
        var tokens = [Float](repeating: 0, count: spec.samples * spec.tokens * spec.dim)
        var cls = [Float](repeating: 0, count: spec.samples * spec.dim)
        var labels = [Int32](repeating: 0, count: spec.samples)
        for s in 0..<spec.samples {
            let c = Int(rng.next() % UInt64(spec.classes))
            labels[s] = Int32(c)
            let offset = (0..<spec.dim).map { _ in normal() * Float(spec.sharedOffset) }
            let p1 = Int(rng.next() % UInt64(spec.tokens))
            var p2 = Int(rng.next() % UInt64(spec.tokens - 1)); if p2 >= p1 { p2 += 1 }
            for n in 0..<spec.tokens {
                for d in 0..<spec.dim {
                    var v = normal() + offset[d]
                    if n == p1 { v += prototypes[2 * c][d] }
                    if n == p2 { v += prototypes[2 * c + 1][d] }
                    tokens[(s * spec.tokens + n) * spec.dim + d] = v
                    cls[s * spec.dim + d] += v / Float(spec.tokens)
                }
            }
        }
        var w = SafeTensorsWriter()
        w.metadata = ["task": "class carried by two tokens at random places", "tokens": "\(spec.tokens)", "dim": "\(spec.dim)",
                      "classes": "\(spec.classes)", "seed": "\(spec.seed)"]
        w.add("tokens", tokens, shape: [spec.samples, spec.tokens, spec.dim])
        w.add("labels", int32: labels, shape: [spec.samples])
        w.add("cls", cls, shape: [spec.samples, spec.dim])
        try w.write(to: path)
    }
}
