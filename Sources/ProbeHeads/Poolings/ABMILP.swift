import Foundation
import ProbeAutodiff

/// AB-MILP (upstream poolings/abmilp.py `ABMILPHead`) in every variant `probe_heads.py` builds
/// from `--abmilp_*` (defaults: self-attention "both", tanh, depth 2, no position condition, all
/// tokens). With `patch` content the first token is dropped; Z = proj(softmax(q kᵀ/√D) v) with one
/// head (qkv without bias) unless self-attention is off; the score predictor (depth − 1 Linear +
/// activation, then Linear to 1) reads Z (`map`, `both`) or x, plus the fixed sin-cos position
/// embedding with `pe`; a = softmax_n(scores); out = Σ_n a_n · (Z with `both`, else x).
public struct ABMILP: Pooling {
    public let name = "abmilp"
    public let options: HeadOptions
    var variant: ABMILPOptions { options.abmilp }
    public init(_ options: HeadOptions) throws {
        guard options.abmilp.depth >= 1 else { throw HeadError("abmilp: --abmilp-depth \(options.abmilp.depth): at least 1") }
        if options.abmilp.positionCondition {
            let grid = Int(Double(Self.patches(options)).squareRoot())
            guard grid * grid == Self.patches(options), options.dim % 4 == 0 else {
                throw HeadError("abmilp --abmilp-cond pe: the position embedding covers a square grid\(options.abmilp.patchOnly ? "" : " plus [CLS]") (\(grid)×\(grid)\(options.abmilp.patchOnly ? "" : " + 1")), but the pooling gets \(Self.tokensIn(options)) tokens of width \(options.dim); use abmilp_all (or --abmilp-content patch) on a square grid, D divisible by 4 — upstream fails there too")
            }
        }
        self.options = options
    }
    /// Tokens the predictor sees (the first dropped with `patch`).
    static func tokensIn(_ o: HeadOptions) -> Int { o.tokens - (o.abmilp.patchOnly ? 1 : 0) }
    /// upstream sizes the position embedding from the backbone's patch count (the tokens it sees,
    /// less the [CLS] row the embedding then carries).
    static func patches(_ o: HeadOptions) -> Int { tokensIn(o) - (o.abmilp.patchOnly ? 0 : 1) }

    public var parameters: [ParameterSpec] {
        let D = options.dim
        var specs: [ParameterSpec] = []
        if variant.positionCondition {
            specs.append(ParameterSpec("pos_embed", [1, Self.tokensIn(options), D], .values(sinCosPositions()), trainable: false))
        }
        if variant.selfAttention != .none { specs += linearSpecs("self_attn.qkv", D, 3 * D, bias: false) + linearSpecs("self_attn.proj", D, D) }
        for i in 0..<(variant.depth - 1) { specs += linearSpecs("attention_predictor.\(2 * i)", D, D) }
        return specs + linearSpecs("attention_predictor.\(2 * (variant.depth - 1))", D, 1)
    }
    public var forwardMACs: Int {
        let (N, D) = (Self.tokensIn(options), options.dim)
        return (variant.selfAttention != .none ? 4 * N * D * D + 2 * N * N * D : 0) + (variant.depth - 1) * N * D * D + 2 * N * D
    }

    /// upstream's `get_2d_sincos_pos_embed(D, g, cls_token)`: per position, sin then cos of h·ω
    /// over the first D/2 channels and of w·ω over the rest, ω_k = 10000^(−k/(D/4)); zeros for [CLS].
    func sinCosPositions() -> [Float] {
        let D = options.dim, g = Int(Double(Self.patches(options)).squareRoot()), quarter = D / 4
        var out: [Float] = variant.patchOnly ? [] : [Float](repeating: 0, count: D)
        for h in 0..<g {
            for w in 0..<g {
                // numpy's meshgrid(grid_w, grid_h): grid[0] varies along w and feeds the first half.
                for (pos, _) in [(Double(w), 0), (Double(h), 1)] {
                    let omegas = (0..<quarter).map { 1 / pow(10000, Double($0) / Double(quarter)) }
                    out += omegas.map { Float(sin(pos * $0)) } + omegas.map { Float(cos(pos * $0)) }
                }
            }
        }
        return out
    }

    public func forward<B>(_ g: Graph<B>, _ input: Variable<B>, _ p: ParameterScope<B>) throws -> PoolingOutput<B> {
        let D = options.dim
        var x = input
        if variant.patchOnly { x = try g.slice(x, axis: 1, 1..<g.shape(input)[1]) }
        let s = g.shape(x)
        var z = x
        if variant.selfAttention != .none {
            let q = try g.linear(x, p, "self_attn.qkv", part: 0, width: D), k = try g.linear(x, p, "self_attn.qkv", part: 1, width: D)
            let v = try g.linear(x, p, "self_attn.qkv", part: 2, width: D)
            let (o, _) = try g.multiHeadAttention(q: q, k: k, v: v, heads: 1, scale: 1 / Float(D).squareRoot())
            z = try g.linear(o, p, "self_attn.proj")                                                          // (B, N, D)
        }
        var h = variant.selfAttention == .none ? x : z
        if variant.positionCondition { h = try g.add(h, try p["pos_embed"]) }
        for i in 0..<(variant.depth - 1) {
            h = try g.activation(try g.linear(h, p, "attention_predictor.\(2 * i)"), variant.activation == .tanh ? .tanh : .relu)
        }
        let scores = try g.linear(h, p, "attention_predictor.\(2 * (variant.depth - 1))")                  // (B, N, 1)
        let a = try g.softmax(try g.reshape(scores, [s[0], 1, s[1]]))                                       // (B, 1, N)
        let out = try g.matmul(a, variant.selfAttention == .both ? z : x)                                   // (B, 1, D)
        return PoolingOutput(features: try g.reshape(out, [s[0], D]), attention: a.value)
    }
}
