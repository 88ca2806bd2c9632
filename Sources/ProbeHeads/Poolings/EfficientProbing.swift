import ProbeAutodiff

/// EP (upstream poolings/ep.py): Q learned queries attend over the raw tokens (keys = tokens, no
/// key projection, scale 1/√D); values V = x W_vᵀ; query j owns value channels [j·c, (j+1)·c).
/// Computed in the exact cheaper order: P_j = Σ_n A[j,n] x_n, then y_j = W_v[rows of j] · P_j.
public struct EfficientProbing: Pooling {
    public let name = "ep"
    public let options: HeadOptions
    public init(_ options: HeadOptions) throws {
        guard options.queries > 0, options.dOut > 0, options.dim % (options.queries * options.dOut) == 0 else {
            throw HeadError("ep: token width D = \(options.dim) is not divisible by the query count Q = \(options.queries) × d_out \(options.dOut); choose Q (--ep-queries) and d_out (--ep-d-out) with Q · d_out dividing D")
        }
        self.options = options
    }
    /// Value channels per query: D / (d_out · Q) (upstream's `--d_out` narrows the values).
    var c: Int { options.dim / (options.queries * options.dOut) }
    public var outputWidth: Int { options.dim / options.dOut }
    public var parameters: [ParameterSpec] {
        let (D, Q) = (options.dim, options.queries)
        return [ParameterSpec("cls_token", [1, Q, D], .normal(std: 0.02))] + linearSpecs("v", D, D / options.dOut, bias: false)
    }
    public var forwardMACs: Int { 2 * options.queries * options.tokens * options.dim + options.dim * options.dim / options.dOut }

    public func forward<B>(_ g: Graph<B>, _ x: Variable<B>, _ p: ParameterScope<B>) throws -> PoolingOutput<B> {
        let (D, Q) = (options.dim, options.queries)
        let batch = g.shape(x)[0]
        let queries = try g.reshape(try p["cls_token"], [Q, D])
        let scores = try g.matmul(queries, x, transB: true, alpha: 1 / Float(D).squareRoot())   // (B, Q, N)
        let attn = try g.softmax(scores)
        let pooled = try g.matmul(attn, x)                                                      // (B, Q, D)
        let perQuery = try g.permute(pooled, [1, 0, 2])                                         // (Q, B, D)
        let wv = try g.reshape(try p["v.weight"], [Q, c, D])
        let y = try g.matmul(perQuery, wv, transB: true)                                        // (Q, B, c)
        let out = try g.reshape(try g.permute(y, [1, 0, 2]), [batch, D / options.dOut])
        return PoolingOutput(features: out, attention: attn.value)
    }
}

/// The EP variant of the upstream README's integration notes (not the default): one learned key
/// projection, identity values, and the Q per-query outputs averaged into (B, D).
public struct EfficientProbingKeyProjection: Pooling {
    public let name = "ep_kproj"
    public let options: HeadOptions
    public init(_ options: HeadOptions) throws {
        guard options.queries > 0 else { throw HeadError("ep_kproj: the query count must be positive") }
        self.options = options
    }
    public var parameters: [ParameterSpec] {
        [ParameterSpec("cls_token", [1, options.queries, options.dim], .normal(std: 0.02))] + linearSpecs("k", options.dim, options.dim, bias: false)
    }
    public var forwardMACs: Int { options.tokens * options.dim * options.dim + 2 * options.queries * options.tokens * options.dim }

    public func forward<B>(_ g: Graph<B>, _ x: Variable<B>, _ p: ParameterScope<B>) throws -> PoolingOutput<B> {
        let (D, Q) = (options.dim, options.queries)
        let keys = try g.linear(x, p, "k")
        let queries = try g.reshape(try p["cls_token"], [Q, D])
        let attn = try g.softmax(try g.matmul(queries, keys, transB: true, alpha: 1 / Float(D).squareRoot()))
        let pooled = try g.matmul(attn, x)                     // (B, Q, D)
        return PoolingOutput(features: try g.mean(pooled, axis: 1), attention: attn.value)
    }
}

/// Linear probing's "pooling": the [CLS] token (`cls`, input (B, D)) or the mean of the patch
/// tokens (`gap`, upstream `pos`). No parameters.
public struct LinearProbeFeatures: Pooling {
    public let name: String
    public let options: HeadOptions
    public let meanOfTokens: Bool
    public init(_ options: HeadOptions, meanOfTokens: Bool) {
        self.options = options; self.meanOfTokens = meanOfTokens; name = meanOfTokens ? "lp_gap" : "lp_cls"
    }
    public var parameters: [ParameterSpec] { [] }
    public var forwardMACs: Int { 0 }
    public func forward<B>(_ g: Graph<B>, _ x: Variable<B>, _ p: ParameterScope<B>) throws -> PoolingOutput<B> {
        if g.shape(x).count == 2 { return PoolingOutput(features: x, attention: nil) }
        return PoolingOutput(features: meanOfTokens ? try g.mean(x, axis: 1) : try g.reshape(try g.slice(x, axis: 1, 0..<1), [g.shape(x)[0], options.dim]),
                             attention: nil)
    }
}
