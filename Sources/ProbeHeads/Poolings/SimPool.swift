import ProbeAutodiff

/// SimPool (upstream poolings/simpool.py, num_heads 1, no qkv bias): q = W_q mean(x),
/// k = W_k LN(x), v = LN(x) (LN eps 1e-6); out = softmax(q kᵀ / √D) v, with q taken back through
/// W_k instead of every token forward (`queryFirstAttention`).
public struct SimPool: Pooling {
    public let name = "simpool"
    public let options: HeadOptions
    public init(_ options: HeadOptions) { self.options = options }
    public var parameters: [ParameterSpec] {
        let D = options.dim
        return layerNormSpecs("norm_patches", D) + linearSpecs("wq", D, D, bias: false) + linearSpecs("wk", D, D, bias: false)
    }
    public var forwardMACs: Int { let (N, D) = (options.tokens, options.dim); return 2 * D * D + 4 * N * D }

    public func forward<B>(_ g: Graph<B>, _ x: Variable<B>, _ p: ParameterScope<B>) throws -> PoolingOutput<B> {
        let s = g.shape(x), D = options.dim
        let gap = try g.reshape(try g.mean(x, axis: 1), [s[0], 1, D])
        let xn = try g.layerNorm(x, p, "norm_patches", eps: 1e-6)
        let q = try g.linear(gap, p, "wq")
        let (o, probs) = try g.queryFirstAttention(q: q, keys: xn, wk: try p["wk.weight"], bk: nil, values: xn, wv: nil, bv: nil,
                                                   heads: 1, scale: 1 / Float(D).squareRoot())
        return PoolingOutput(features: try g.reshape(o, [s[0], D]), attention: probs)
    }
}

/// SimPool without the linear maps (upstream SimPool_nolinears, 12 heads): q = LN(mean(x)),
/// k = LN(x), v = x; 12-head attention with scale (D/12)^-½.
public struct EfficientSimPool: Pooling {
    public let name = "esimpool"
    public let options: HeadOptions
    public static let heads = 12
    public init(_ options: HeadOptions) throws {
        guard options.dim % Self.heads == 0 else { throw HeadError("esimpool: token width D = \(options.dim) is not divisible by its \(Self.heads) heads") }
        self.options = options
    }
    public var parameters: [ParameterSpec] { layerNormSpecs("norm_patches", options.dim) }
    public var forwardMACs: Int { 2 * options.tokens * options.dim }

    public func forward<B>(_ g: Graph<B>, _ x: Variable<B>, _ p: ParameterScope<B>) throws -> PoolingOutput<B> {
        let s = g.shape(x), D = options.dim
        let gap = try g.reshape(try g.mean(x, axis: 1), [s[0], 1, D])
        let q = try g.layerNorm(gap, p, "norm_patches", eps: 1e-6), k = try g.layerNorm(x, p, "norm_patches", eps: 1e-6)
        let (o, probs) = try g.multiHeadAttention(q: q, k: k, v: x, heads: Self.heads, scale: 1 / Float(D / Self.heads).squareRoot())
        return PoolingOutput(features: try g.reshape(o, [s[0], D]), attention: probs)
    }
}
