import ProbeAutodiff

/// AB-MILP as wired upstream (self-attention "both", tanh, depth 2): Z = proj(softmax(q kᵀ/√D) v)
/// with one head (qkv without bias); scores s = Linear(tanh(Linear(Z))); a = softmax_n(s);
/// out = Σ_n a_n Z_n.
public struct ABMILP: Pooling {
    public let name = "abmilp"
    public let options: HeadOptions
    public init(_ options: HeadOptions) { self.options = options }
    public var parameters: [ParameterSpec] {
        let D = options.dim
        return linearSpecs("self_attn.qkv", D, 3 * D, bias: false) + linearSpecs("self_attn.proj", D, D)
            + linearSpecs("attention_predictor.0", D, D) + linearSpecs("attention_predictor.2", D, 1)
    }
    public var forwardMACs: Int { let (N, D) = (options.tokens, options.dim); return 5 * N * D * D + 2 * N * N * D + 2 * N * D }

    public func forward<B>(_ g: Graph<B>, _ x: Variable<B>, _ p: ParameterScope<B>) throws -> PoolingOutput<B> {
        let s = g.shape(x), D = options.dim
        let q = try g.linear(x, p, "self_attn.qkv", part: 0, width: D), k = try g.linear(x, p, "self_attn.qkv", part: 1, width: D)
        let v = try g.linear(x, p, "self_attn.qkv", part: 2, width: D)
        let (o, _) = try g.multiHeadAttention(q: q, k: k, v: v, heads: 1, scale: 1 / Float(D).squareRoot())
        let z = try g.linear(o, p, "self_attn.proj")                                                          // (B, N, D)
        let hidden = try g.activation(try g.linear(z, p, "attention_predictor.0"), .tanh)
        let scores = try g.linear(hidden, p, "attention_predictor.2")                                         // (B, N, 1)
        let a = try g.softmax(try g.reshape(scores, [s[0], 1, s[1]]))                                       // (B, 1, N)
        let out = try g.matmul(a, z)                                                                         // (B, 1, D)
        return PoolingOutput(features: try g.reshape(out, [s[0], D]), attention: a.value)
    }
}
