import ProbeAutodiff

/// CoCa's attentional pooler (8 heads × 64, 196 image queries, one shared 64-d key and value,
/// LayerNorm with learnable γ and a zero β buffer, eps 1e-5). Only query 0's row is returned, and
/// queries do not interact, so only query 0 is computed (exact); the other queries get zero gradient.
public struct CoCaPool: Pooling {
    public let name = "coca"
    public let options: HeadOptions
    public static let (heads, headDim, imageQueries) = (8, 64, 196)
    public init(_ options: HeadOptions) { self.options = options }
    public var parameters: [ParameterSpec] {
        let D = options.dim, inner = Self.heads * Self.headDim
        return [ParameterSpec("img_queries", [Self.imageQueries, D], .normal(std: 1)),
                ParameterSpec("norm.gamma", [D], .constant(1)), ParameterSpec("norm.beta", [D], .constant(0), trainable: false)]
            + linearSpecs("to_q", D, inner, bias: false) + linearSpecs("to_kv", D, 2 * Self.headDim, bias: false)
            + linearSpecs("to_out", inner, D, bias: false)
    }
    public var forwardMACs: Int { let (N, D) = (options.tokens, options.dim); return 2 * 64 * N * D + 512 * D + 2 * 8 * N * 64 + 512 * D }

    public func forward<B>(_ g: Graph<B>, _ x: Variable<B>, _ p: ParameterScope<B>) throws -> PoolingOutput<B> {
        let s = g.shape(x), (H, dh) = (Self.heads, Self.headDim)
        let q0 = try g.layerNorm(try g.slice(try p["img_queries"], axis: 0, 0..<1), gamma: try p["norm.gamma"], beta: try p["norm.beta"], eps: 1e-5)
        let q = try g.batched(try g.reshape(try g.linear(q0, p, "to_q"), [1, 1, H * dh]), s[0])                 // (B, 1, 512)
        let k = try g.linear(x, p, "to_kv", part: 0, width: dh), v = try g.linear(x, p, "to_kv", part: 1, width: dh)   // (B, N, 64)
        // One key/value head shared by every query head.
        let kH = try g.expand(try g.reshape(k, [s[0], 1, s[1], dh]), [s[0], H, s[1], dh])
        let vH = try g.expand(try g.reshape(v, [s[0], 1, s[1], dh]), [s[0], H, s[1], dh])
        let (o, probs) = try g.attention(q: try g.splitHeads(q, heads: H), k: kH, v: vH, scale: 1 / Float(dh).squareRoot())
        let out = try g.linear(try g.reshape(try g.mergeHeads(o), [s[0], H * dh]), p, "to_out")
        return PoolingOutput(features: out, attention: probs)
    }
}

/// CaiT class-attention pooling (4 heads, one block, LayerScale 1e-5, LN eps 1e-6 in the block,
/// 1e-5 at the output): U = LN1([c; x]); c += γ1 ⊙ proj(attn(q(U₀), k(U), v(U))); c += γ2 ⊙ mlp(LN2 c).
public struct CaiTPool: Pooling {
    public let name = "cait"
    public let options: HeadOptions
    public static let heads = 4
    public init(_ options: HeadOptions) throws {
        guard options.dim % Self.heads == 0 else { throw HeadError("cait: D = \(options.dim) is not divisible by its \(Self.heads) heads") }
        self.options = options
    }
    let b = "blocks_token_only.0"
    public var parameters: [ParameterSpec] {
        let D = options.dim
        return [ParameterSpec("cls_token", [1, 1, D], .truncNormal(std: 0.02))]
            + layerNormSpecs("\(b).norm1", D) + linearSpecs("\(b).attn.q", D, D) + linearSpecs("\(b).attn.k", D, D)
            + linearSpecs("\(b).attn.v", D, D) + linearSpecs("\(b).attn.proj", D, D)
            + [ParameterSpec("\(b).gamma_1", [D], .constant(1e-5)), ParameterSpec("\(b).gamma_2", [D], .constant(1e-5))]
            + layerNormSpecs("\(b).norm2", D) + linearSpecs("\(b).mlp.fc1", D, 4 * D) + linearSpecs("\(b).mlp.fc2", 4 * D, D)
            + layerNormSpecs("norm", D)
    }
    public var forwardMACs: Int { let (N, D) = (options.tokens, options.dim); return 2 * Self.heads * (N + 1) * D + 12 * D * D + 2 * (N + 1) * D }

    public func forward<B>(_ g: Graph<B>, _ x: Variable<B>, _ p: ParameterScope<B>) throws -> PoolingOutput<B> {
        let s = g.shape(x), D = options.dim
        let c = try g.batched(try p["cls_token"], s[0])
        let blk = p.prefixed("\(b).")
        let u = try g.layerNorm(try g.concat([c, x], axis: 1), blk, "norm1", eps: 1e-6)
        let q = try g.linear(try g.slice(u, axis: 1, 0..<1), blk, "attn.q")
        let (o, probs) = try g.queryFirstAttention(q: q, keys: u, wk: try blk["attn.k.weight"], bk: blk.optional("attn.k.bias"),
                                                   values: u, wv: try blk["attn.v.weight"], bv: blk.optional("attn.v.bias"),
                                                   heads: Self.heads, scale: 1 / Float(D / Self.heads).squareRoot())
        let c1 = try g.add(c, try g.mul(try g.linear(o, blk, "attn.proj"), try blk["gamma_1"]))
        let c2 = try g.add(c1, try g.mul(try g.mlp(try g.layerNorm(c1, blk, "norm2", eps: 1e-6), blk, "mlp"), try blk["gamma_2"]))
        let out = try g.layerNorm(c2, p, "norm", eps: 1e-5)
        return PoolingOutput(features: try g.reshape(out, [s[0], D]), attention: probs)
    }
}

/// One DINOv2 block (8 heads, qkv without bias, no LayerScale, LN eps 1e-5), then the mean over tokens.
public struct DinoViTPool: Pooling {
    public let name = "dinovit"
    public let options: HeadOptions
    public static let heads = 8
    public init(_ options: HeadOptions) throws {
        guard options.dim % Self.heads == 0 else { throw HeadError("dinovit: D = \(options.dim) is not divisible by its \(Self.heads) heads") }
        self.options = options
    }
    let b = "dino_block"
    public var parameters: [ParameterSpec] {
        let D = options.dim
        return layerNormSpecs("\(b).norm1", D) + linearSpecs("\(b).attn.qkv", D, 3 * D, bias: false) + linearSpecs("\(b).attn.proj", D, D)
            + layerNormSpecs("\(b).norm2", D) + linearSpecs("\(b).mlp.fc1", D, 4 * D) + linearSpecs("\(b).mlp.fc2", 4 * D, D)
    }
    public var forwardMACs: Int { let (N, D) = (options.tokens, options.dim); return 12 * N * D * D + 2 * N * N * D }

    public func forward<B>(_ g: Graph<B>, _ x: Variable<B>, _ p: ParameterScope<B>) throws -> PoolingOutput<B> {
        let D = options.dim
        let blk = p.prefixed("\(b).")
        let h = try g.layerNorm(x, blk, "norm1", eps: 1e-5)
        let q = try g.linear(h, blk, "attn.qkv", part: 0, width: D), k = try g.linear(h, blk, "attn.qkv", part: 1, width: D)
        let v = try g.linear(h, blk, "attn.qkv", part: 2, width: D)
        let (o, probs) = try g.multiHeadAttention(q: q, k: k, v: v, heads: Self.heads, scale: 1 / Float(D / Self.heads).squareRoot())
        let x1 = try g.add(x, try g.linear(o, blk, "attn.proj"))
        let x2 = try g.add(x1, try g.mlp(try g.layerNorm(x1, blk, "norm2", eps: 1e-5), blk, "mlp"))
        return PoolingOutput(features: try g.mean(x2, axis: 1), attention: probs)
    }
}

/// V-JEPA's attentive pooler (H = --num_heads, one query, complete cross-attention block, LN eps
/// 1e-5): q1 = query + proj(attn(q(query), kv(LN1 x))); q2 = q1 + mlp(LN2 q1). Init trunc-normal 0.02,
/// biases 0, proj and fc2 weights divided by √2.
public struct JEPAPool: Pooling {
    public let name = "jepa"
    public let options: HeadOptions
    public init(_ options: HeadOptions) throws {
        guard options.heads > 0, options.dim % options.heads == 0 else { throw HeadError("jepa: D = \(options.dim) is not divisible by --num-heads \(options.heads)") }
        self.options = options
    }
    let b = "cross_attention_block"
    public var parameters: [ParameterSpec] {
        let D = options.dim
        func lin(_ n: String, _ i: Int, _ o: Int, std: Double = 0.02) -> [ParameterSpec] {
            [ParameterSpec("\(b).\(n).weight", [o, i], .truncNormal(std: std)), ParameterSpec("\(b).\(n).bias", [o], .constant(0))]
        }
        return [ParameterSpec("query_tokens", [1, 1, D], .truncNormal(std: 0.02))] + layerNormSpecs("\(b).norm1", D)
            + lin("xattn.q", D, D) + lin("xattn.kv", D, 2 * D) + lin("xattn.proj", D, D, std: 0.02 / 2.0.squareRoot())
            + layerNormSpecs("\(b).norm2", D) + lin("mlp.fc1", D, 4 * D) + lin("mlp.fc2", 4 * D, D, std: 0.02 / 2.0.squareRoot())
    }
    public var forwardMACs: Int { let (N, D) = (options.tokens, options.dim); return 2 * options.heads * N * D + 2 * N * D + 11 * D * D }

    public func forward<B>(_ g: Graph<B>, _ x: Variable<B>, _ p: ParameterScope<B>) throws -> PoolingOutput<B> {
        let s = g.shape(x), D = options.dim
        let query = try g.batched(try p["query_tokens"], s[0])
        let blk = p.prefixed("\(b).")
        let xn = try g.layerNorm(x, blk, "norm1", eps: 1e-5)
        // One query for the batch: projected once, then taken back through the key weight.
        let q = try g.linear(try p["query_tokens"], blk, "xattn.q")
        let (wk, bk) = try g.linearPart(blk, "xattn.kv", part: 0, width: D), (wv, bv) = try g.linearPart(blk, "xattn.kv", part: 1, width: D)
        let (o, probs) = try g.queryFirstAttention(q: q, keys: xn, wk: wk, bk: bk, values: xn, wv: wv, bv: bv,
                                                   heads: options.heads, scale: 1 / Float(D / options.heads).squareRoot())
        let q1 = try g.add(query, try g.linear(o, blk, "xattn.proj"))
        let q2 = try g.add(q1, try g.mlp(try g.layerNorm(q1, blk, "norm2", eps: 1e-5), blk, "mlp"))
        return PoolingOutput(features: try g.reshape(q2, [s[0], D]), attention: probs)
    }
}
