import ProbeAutodiff

/// CLIP's AttentionPool2d (4 heads, qkv bias, LN eps 1e-6, learned positions for the mean token and
/// the √N×√N grid): only token 0's output is returned, so only its query is computed (exact), and
/// in the query-first order (`queryFirstAttention`).
public struct CLIPPool: Pooling {
    public let name = "clip"
    public let options: HeadOptions
    public static let heads = 4
    public init(_ options: HeadOptions) throws {
        _ = try squareGrid("clip", options.tokens)
        guard options.dim % Self.heads == 0 else { throw HeadError("clip: D = \(options.dim) is not divisible by its \(Self.heads) heads") }
        self.options = options
    }
    public var parameters: [ParameterSpec] {
        let (D, N) = (options.dim, options.tokens)
        return [ParameterSpec("pos_embed", [N + 1, D], .truncNormal(std: 1 / Double(D).squareRoot()))]
            + [ParameterSpec("qkv.weight", [3 * D, D], .truncNormal(std: 1 / Double(D).squareRoot())), ParameterSpec("qkv.bias", [3 * D], .constant(0))]
            + linearSpecs("proj", D, D) + layerNormSpecs("norm", D)
    }
    public var forwardMACs: Int { let (N, D) = (options.tokens, options.dim); return 2 * Self.heads * (N + 1) * D + 4 * D * D + 2 * (N + 1) * D }

    public func forward<B>(_ g: Graph<B>, _ x: Variable<B>, _ p: ParameterScope<B>) throws -> PoolingOutput<B> {
        let s = g.shape(x), D = options.dim
        let xn = try g.layerNorm(x, p, "norm", eps: 1e-6)
        let t = try g.add(try g.concat([try g.reshape(try g.mean(xn, axis: 1), [s[0], 1, D]), xn], axis: 1), try p["pos_embed"])
        let q = try g.linear(try g.slice(t, axis: 1, 0..<1), p, "qkv", part: 0, width: D)
        let (wk, bk) = try g.linearPart(p, "qkv", part: 1, width: D), (wv, bv) = try g.linearPart(p, "qkv", part: 2, width: D)
        let (o, probs) = try g.queryFirstAttention(q: q, keys: t, wk: wk, bk: bk, values: t, wv: wv, bv: bv,
                                                   heads: Self.heads, scale: 1 / Float(D / Self.heads).squareRoot())
        let out = try g.linear(try g.reshape(o, [s[0], D]), p, "proj")
        return PoolingOutput(features: out, attention: probs)
    }
}

/// SigLIP's AttentionPoolLatent (8 heads, MLP ratio 4, exact GELU): o = proj(MHA(q(latent), kv(x))),
/// then o + mlp(o); the attention in the query-first order (`queryFirstAttention`).
public struct SigLIPPool: Pooling {
    public let name = "siglip"
    public let options: HeadOptions
    public static let heads = 8
    public init(_ options: HeadOptions) throws {
        guard options.dim % Self.heads == 0 else { throw HeadError("siglip: D = \(options.dim) is not divisible by its \(Self.heads) heads") }
        self.options = options
    }
    public var parameters: [ParameterSpec] {
        let D = options.dim
        return [ParameterSpec("latent", [1, 1, D], .truncNormalTF(std: 1 / Double(D).squareRoot()))] + linearSpecs("q", D, D)
            + linearSpecs("kv", D, 2 * D) + linearSpecs("proj", D, D) + linearSpecs("mlp.fc1", D, 4 * D) + linearSpecs("mlp.fc2", 4 * D, D)
    }
    public var forwardMACs: Int { let (N, D) = (options.tokens, options.dim); return 2 * Self.heads * N * D + 11 * D * D }

    public func forward<B>(_ g: Graph<B>, _ x: Variable<B>, _ p: ParameterScope<B>) throws -> PoolingOutput<B> {
        let s = g.shape(x), D = options.dim
        let q = try g.linear(try p["latent"], p, "q")
        let (wk, bk) = try g.linearPart(p, "kv", part: 0, width: D), (wv, bv) = try g.linearPart(p, "kv", part: 1, width: D)
        let (o, probs) = try g.queryFirstAttention(q: q, keys: x, wk: wk, bk: bk, values: x, wv: wv, bv: bv,
                                                   heads: Self.heads, scale: 1 / Float(D / Self.heads).squareRoot())
        let y = try g.linear(o, p, "proj")
        let out = try g.add(y, try g.mlp(y, p, "mlp"))
        return PoolingOutput(features: try g.reshape(out, [s[0], D]), attention: probs)
    }
}

/// AIM's attention-pooling classifier (H = --num_heads): BatchNorm over (B, N) per channel
/// (affine-free, eps 1e-6), the learned query without projection, k and v projections without bias;
/// the attention in the query-first order (`queryFirstAttention`).
public struct AIMPool: Pooling {
    public let name = "aim"
    public let options: HeadOptions
    public init(_ options: HeadOptions) throws {
        guard options.heads > 0, options.dim % options.heads == 0 else { throw HeadError("aim: D = \(options.dim) is not divisible by --num-heads \(options.heads)") }
        self.options = options
    }
    public var parameters: [ParameterSpec] {
        let D = options.dim
        return [ParameterSpec("cls_token", [1, 1, D], .normal(std: 0.02))] + linearSpecs("k", D, D, bias: false) + linearSpecs("v", D, D, bias: false)
            + [ParameterSpec("bn.running_mean", [D], .constant(0), trainable: false), ParameterSpec("bn.running_var", [D], .constant(1), trainable: false)]
    }
    public var forwardMACs: Int { let (N, D) = (options.tokens, options.dim); return 2 * options.heads * N * D + D * D + 2 * N * D }

    public func forward<B>(_ g: Graph<B>, _ x: Variable<B>, _ p: ParameterScope<B>) throws -> PoolingOutput<B> {
        let s = g.shape(x), D = options.dim
        let xb = try g.batchNorm(x, p, "bn", channelAxis: 2, eps: 1e-6)
        let (o, probs) = try g.queryFirstAttention(q: try p["cls_token"], keys: xb, wk: try p["k.weight"], bk: nil, values: xb,
                                                   wv: try p["v.weight"], bv: nil, heads: options.heads,
                                                   scale: 1 / Float(D / options.heads).squareRoot())
        return PoolingOutput(features: try g.reshape(o, [s[0], D]), attention: probs)
    }
}

/// CAE's attentive block (8 heads, no qkv bias): the zero-initialised query token and the tokens are
/// layer-normed separately for q, k and v (eps 1e-5); out = proj(attention), the attention in the
/// query-first order (`queryFirstAttention`). `norm2_cross` is unused
/// upstream but part of the state dict.
public struct CAEPool: Pooling {
    public let name = "cae"
    public let options: HeadOptions
    public static let heads = 8
    public init(_ options: HeadOptions) throws {
        guard options.dim % Self.heads == 0 else { throw HeadError("cae: D = \(options.dim) is not divisible by its \(Self.heads) heads") }
        self.options = options
    }
    public var parameters: [ParameterSpec] {
        let D = options.dim
        return [ParameterSpec("query_token", [1, 1, D], .constant(0))]
            + layerNormSpecs("norm1_q", D) + layerNormSpecs("norm1_k", D) + layerNormSpecs("norm1_v", D) + layerNormSpecs("norm2_cross", D)
            + linearSpecs("cross_attn.q", D, D, bias: false) + linearSpecs("cross_attn.k", D, D, bias: false)
            + linearSpecs("cross_attn.v", D, D, bias: false) + linearSpecs("cross_attn.proj", D, D)
    }
    public var forwardMACs: Int { let (N, D) = (options.tokens, options.dim); return 2 * Self.heads * N * D + 2 * D * D + 4 * N * D }

    public func forward<B>(_ g: Graph<B>, _ x: Variable<B>, _ p: ParameterScope<B>) throws -> PoolingOutput<B> {
        let s = g.shape(x), D = options.dim
        // The query token is one for the whole batch: normed and projected once.
        let q = try g.linear(try g.layerNorm(try p["query_token"], p, "norm1_q", eps: 1e-5), p, "cross_attn.q")
        let kIn = try g.layerNorm(x, p, "norm1_k", eps: 1e-5), vIn = try g.layerNorm(x, p, "norm1_v", eps: 1e-5)
        let (o, probs) = try g.queryFirstAttention(q: q, keys: kIn, wk: try p["cross_attn.k.weight"], bk: p.optional("cross_attn.k.bias"),
                                                   values: vIn, wv: try p["cross_attn.v.weight"], bv: p.optional("cross_attn.v.bias"),
                                                   heads: Self.heads, scale: 1 / Float(D / Self.heads).squareRoot())
        let out = try g.linear(o, p, "cross_attn.proj")
        return PoolingOutput(features: try g.reshape(out, [s[0], D]), attention: probs)
    }
}
