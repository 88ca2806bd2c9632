import Foundation

/// How a parameter is initialised (upstream defaults).
public enum Initializer: Sendable, Equatable {
    /// PyTorch Linear/Conv default (kaiming-uniform, a = √5): U(−1/√fanIn, 1/√fanIn).
    case uniformFanIn(Int)
    case normal(std: Double)
    /// timm's / torch's `trunc_normal_(std=σ)`: normal truncated at ±2 absolute (the default
    /// bounds a = −2, b = 2), which for the small σ of the heads truncates practically nothing.
    case truncNormal(std: Double)
    /// timm's `trunc_normal_tf_(std=σ)`: truncated at ±2σ, then scaled (siglip's latent).
    case truncNormalTF(std: Double)
    case constant(Double)
    /// Fixed values (AB-MILP's sin-cos position embedding, a buffer upstream keeps in its state dict).
    case values([Float])
}

/// One tensor of a head's state dict: name (without the `0.` pooling prefix), shape, initialiser,
/// and whether it trains (parameters) or not (buffers such as BatchNorm running statistics).
public struct ParameterSpec: Sendable, Equatable {
    public var name: String
    public var shape: [Int]
    public var initializer: Initializer
    public var trainable: Bool
    public init(_ name: String, _ shape: [Int], _ initializer: Initializer, trainable: Bool = true) {
        self.name = name; self.shape = shape; self.initializer = initializer; self.trainable = trainable
    }
    public var count: Int { shape.reduce(1, *) }
}

/// Specs of a PyTorch Linear(in, out): `weight` (out, in) and optionally `bias` (out).
func linearSpecs(_ prefix: String, _ inF: Int, _ outF: Int, bias: Bool = true) -> [ParameterSpec] {
    [ParameterSpec("\(prefix).weight", [outF, inF], .uniformFanIn(inF))] + (bias ? [ParameterSpec("\(prefix).bias", [outF], .uniformFanIn(inF))] : [])
}

/// Specs of a LayerNorm(dim) with affine parameters (weight 1, bias 0).
func layerNormSpecs(_ prefix: String, _ dim: Int) -> [ParameterSpec] {
    [ParameterSpec("\(prefix).weight", [dim], .constant(1)), ParameterSpec("\(prefix).bias", [dim], .constant(0))]
}

/// The project's seeded generator (SplitMix64; Box–Muller normals): initialisation, shuffles,
/// subsets and synthetic data all draw from it, so runs are reproducible from their seeds.
public struct InitRNG {
    private var state: UInt64
    public init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    public mutating func uniform() -> Double { Double(next() >> 11) / Double(1 << 53) }
    public mutating func normal() -> Double {
        let u1 = max(uniform(), 1e-300), u2 = uniform()
        return (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
    }

    public mutating func values(for spec: ParameterSpec) -> [Float] {
        if case let .values(v) = spec.initializer { return v }
        return (0..<spec.count).map { _ in
            switch spec.initializer {
            case let .uniformFanIn(fanIn):
                let bound = 1 / Double(max(fanIn, 1)).squareRoot()
                return Float((uniform() * 2 - 1) * bound)
            case let .normal(std): return Float(normal() * std)
            case let .truncNormal(std):
                var v = normal() * std
                while abs(v) > 2 { v = normal() * std }
                return Float(v)
            case let .truncNormalTF(std):
                var v = normal()
                while abs(v) > 2 { v = normal() }
                return Float(v * std)
            case let .constant(c): return Float(c)
            case .values: return 0
            }
        }
    }
}
