import Foundation
import ProbeOps

/// The architecture of a timm `VisionTransformer`, as far as the frozen forward needs it.
public struct ViTConfig: Codable, Sendable, Equatable {
    public var patchSize: Int
    public var embedDim: Int
    public var depth: Int
    public var numHeads: Int
    /// Hidden width of each block's MLP (`mlp_ratio` × D).
    public var mlpHidden: Int
    /// The image size the position embedding was trained for (its grid is imgSize / patchSize).
    public var imgSize: Int
    public var classToken = true
    public var regTokens = 0
    /// The position embedding covers the patches only; [CLS] and registers get none (timm
    /// `no_embed_class`, DINOv2 with registers).
    public var noEmbedClass = false
    /// A LayerNorm before the blocks (`norm_pre`, CLIP).
    public var preNorm = false
    public var normEps: Float = 1e-6
    public var activation: Activation = .gelu
    public var qkvBias = true
    /// LayerScale (`ls1.gamma`, `ls2.gamma`; timm `init_values`).
    public var layerScale = false
    /// Resizing the position embedding to another grid (see `PosEmbedResize`).
    public var posEmbedResize: PosEmbedResize = .antialias

    // The architecture beyond timm's `VisionTransformer` (BEiT, EVA, AIMv2): each default is the
    // plain ViT's.
    /// LayerNorm (weight and bias) or RMSNorm (weight only) everywhere.
    public var norm: NormKind = .layer
    /// A norm after the patch projection (`patch_embed.norm`, AIMv2).
    public var patchNorm = false
    /// Biases on the attention's output projection and the MLP's linears (AIMv2: none).
    public var projBias = true
    /// The MLP: GELU-family `fc1`/`fc2`, or a SiLU-gated one (`SwiGLU`: `fc1_g`, `fc1_x`; `GluMlp`:
    /// one `fc1` holding gate then value).
    public var mlp: MLPKind = .mlp
    /// The hidden width rounded up to a multiple of this (timm `swiglu_align_to`; 0: none).
    public var mlpAlign = 0
    /// A norm on the MLP's hidden activations before `fc2` (`mlp.norm`, EVA-02's sub-LN).
    public var mlpNorm = false
    /// A norm on the attention's output before `proj` (`attn.norm`, EVA-CLIP's `scale_attn_inner`).
    public var attnNorm = false
    /// How the q, k, v projections are stored.
    public var qkvLayout: QKVLayout = .fused
    /// LayerScale's names: `ls1.gamma` (timm ViT) or `gamma_1` (BEiT, EVA).
    public var layerScaleNames: LayerScaleNames = .ls
    /// BEiT's relative position bias, a table per block (`attn.relative_position_bias_table`).
    public var relPosBias = false
    /// One relative position table for every block (`rel_pos_bias.relative_position_bias_table`:
    /// BEiT's and SimMIM's pretraining checkpoints, upstream's SimMIM loader).
    public var sharedRelPosBias = false
    /// A learnt absolute position table (`pos_embed`); BEiT v2 and DINOv3 have none.
    public var absPosEmbed = true
    /// Rotary position embedding of q and k (patch tokens only).
    public var rope: RoPESpec?
    /// Residual post-norm blocks (`x + norm1(attn(x))`, EVA-02-CLIP E-14).
    public var postNorm = false
    /// A norm after the blocks (`norm`); timm drops it (Identity) where the pooled head normalises
    /// instead (`global_pool='avg'` BEiT and EVA-02), so `forward_features` is the last block's output.
    public var finalNorm = true
    /// Heads of the attention pool (`attn_pool`) where it differs from the model's (PE: 8).
    public var attnPoolHeads: Int?
    /// The MLP's width ratio (kept to recompute the hidden width when the width is overridden).
    public var mlpRatio: Double = 4
    /// A Hiera (hierarchical stages; `embedDim`, `numHeads` and `patchSize` are then the last
    /// stage's width, heads and token stride).
    public var hiera: HieraSpec?
    /// Which family's probing protocol applies by default (`ProbingProtocol`).
    public var family: BackboneFamily = .vit
    /// Normalisation of the input pixels (per RGB channel).
    public var mean: [Float] = [0.485, 0.456, 0.406]
    public var std: [Float] = [0.229, 0.224, 0.225]

    public init(patchSize: Int, embedDim: Int, depth: Int, numHeads: Int, mlpRatio: Double = 4, imgSize: Int) {
        self.patchSize = patchSize; self.embedDim = embedDim; self.depth = depth; self.numHeads = numHeads
        // timm's Mlp: hidden = int(dim · mlp_ratio) (SO400M: 1152 · 3.7362 → 4304).
        self.mlpHidden = Int(Double(embedDim) * mlpRatio); self.imgSize = imgSize; self.mlpRatio = mlpRatio
    }

    /// The hidden width for the current width, ratio and alignment (as timm computes it).
    public mutating func recomputeMLPHidden() {
        var h = Int(Double(embedDim) * mlpRatio)
        if mlpAlign > 0 { h += (mlpAlign - h % mlpAlign) % mlpAlign }
        mlpHidden = h
    }

    /// The patch embedding has a bias unless the model normalises before its blocks (timm: `bias=not pre_norm`).
    public var patchBias: Bool { !preNorm }
    /// Tokens before the patches: [CLS] then registers.
    public var prefixTokens: Int { (classToken ? 1 : 0) + regTokens }
    /// Whether the tokens probed after the final norm keep the [CLS] in front of the patches: open_clip's
    /// timm-trunk towers (EVA-02-CLIP, PE-Core), whose tokens upstream reads as the trunk's
    /// `forward_features`, which keeps them (`CLIPWrapper`). Elsewhere the probed tokens are the patches.
    public var normTokensKeepCLS: Bool { (family == .evaclip || family == .pe) && classToken && regTokens == 0 }
    /// The grid of the stored position embedding.
    public var posEmbedGrid: Int { imgSize / patchSize }
    /// Rows of the stored position embedding.
    public var posEmbedLength: Int { posEmbedGrid * posEmbedGrid + (noEmbedClass ? 0 : prefixTokens) }
    /// Whether norms have a bias.
    public var normBias: Bool { norm == .layer }
    public var headDim: Int { embedDim / numHeads }

    /// Checks the configuration is one the forward can run.
    public func validate(_ what: String) throws {
        guard patchSize > 0, embedDim > 0, depth > 0, numHeads > 0, mlpHidden > 0, imgSize >= patchSize else {
            throw BackboneError("\(what): patch \(patchSize), width \(embedDim), depth \(depth), heads \(numHeads), MLP \(mlpHidden), image \(imgSize) is not a ViT")
        }
        guard embedDim % numHeads == 0 else { throw BackboneError("\(what): width \(embedDim) is not divisible by \(numHeads) heads") }
        if rope != nil, headDim % 4 != 0 {
            throw BackboneError("\(what): rotary embeddings need a head width divisible by 4 (two axes of sine-cosine pairs), not \(headDim)")
        }
    }

    /// A configuration from timm constructor arguments (the `config` of a `vit_*` golden, or a
    /// JSON file): `patch_size, embed_dim, depth, num_heads, mlp_ratio, qkv_bias, img_size,
    /// class_token, reg_tokens, no_embed_class, pre_norm, init_values, norm_layer
    /// ("layernorm_eps1e-5"), act_layer ("gelu", "quick_gelu", "gelu_tanh")`.
    public static func fromTimmArguments(_ json: String) throws -> ViTConfig {
        guard let o = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else {
            throw BackboneError("ViT configuration is not a JSON object: \(json.prefix(200))")
        }
        func int(_ k: String, _ d: Int? = nil) throws -> Int {
            if let v = o[k] as? Int { return v }
            if let v = o[k] as? [Int], let f = v.first { return f }   // img_size / patch_size as pairs
            if let d { return d }
            throw BackboneError("ViT configuration lacks `\(k)`")
        }
        if let model = o["model"] as? String { return try registryOverridden(model, o) }
        var c = ViTConfig(patchSize: try int("patch_size", 16), embedDim: try int("embed_dim", 768), depth: try int("depth", 12),
                          numHeads: try int("num_heads", 12), mlpRatio: (o["mlp_ratio"] as? Double) ?? 4, imgSize: try int("img_size", 224))
        c.qkvBias = (o["qkv_bias"] as? Bool) ?? true
        c.classToken = (o["class_token"] as? Bool) ?? true
        c.regTokens = (o["reg_tokens"] as? Int) ?? 0
        c.noEmbedClass = (o["no_embed_class"] as? Bool) ?? false
        c.preNorm = (o["pre_norm"] as? Bool) ?? false
        c.layerScale = o["init_values"] != nil && !(o["init_values"] is NSNull)
        if let norm = o["norm_layer"] as? String {
            guard let r = norm.range(of: "eps"), let eps = Float(norm[r.upperBound...]) else {
                throw BackboneError("ViT configuration: norm_layer `\(norm)` (expected layernorm_eps<value>)")
            }
            c.normEps = eps
        }
        if let f = o["family"] as? String {
            guard let v = BackboneFamily(rawValue: f) else { throw BackboneError("ViT configuration: family `\(f)` (expected \(BackboneFamily.allCases.map(\.rawValue).joined(separator: ", ")))") }
            c.family = v
            if v == .clip { c.mean = ViTRegistry.clipMean; c.std = ViTRegistry.clipStd }
            if v == .siglip { c.mean = [0.5, 0.5, 0.5]; c.std = [0.5, 0.5, 0.5] }
        }
        if let r = o["pos_embed_resize"] as? String {
            guard let v = PosEmbedResize(rawValue: r) else { throw BackboneError("ViT configuration: pos_embed_resize `\(r)` (expected \(PosEmbedResize.allCases.map(\.rawValue).joined(separator: ", ")))") }
            c.posEmbedResize = v
        }
        switch (o["act_layer"] as? String) ?? "gelu" {
        case "gelu": c.activation = .gelu
        case "quick_gelu": c.activation = .quickGELU
        case "gelu_tanh": c.activation = .tanhGELU
        case let a: throw BackboneError("ViT configuration: act_layer `\(a)` is not supported (gelu, quick_gelu, gelu_tanh)")
        }
        try c.validate("ViT configuration")
        return c
    }
}

extension ViTConfig {
    /// A registry entry with timm constructor arguments overriding it (`{"model":
    /// "eva02_base_patch14_224", "embed_dim": 64, "depth": 2, "num_heads": 4}`), as
    /// `timm.create_model(model, **overrides)` builds it: the width, depth, heads, MLP ratio, image
    /// and patch size, registers and the RoPE reference grid.
    static func registryOverridden(_ model: String, _ o: [String: Any]) throws -> ViTConfig {
        var c = try ViTRegistry.config(model)
        if var h = c.hiera {
            // Hiera: the first stage's width and heads, the blocks per stage, the image size.
            let known: Set<String> = ["model", "embed_dim", "num_heads", "stages", "img_size"]
            if let unknown = o.keys.filter({ !known.contains($0) }).sorted().first {
                throw BackboneError("Hiera configuration over \(model): `\(unknown)` cannot be overridden (\(known.sorted().joined(separator: ", ")))")
            }
            if let v = o["embed_dim"] as? Int { h.embedDim = v }
            if let v = o["num_heads"] as? Int { h.heads = v }
            if let v = o["stages"] as? [Int] { h.stages = v }
            let size = (o["img_size"] as? Int) ?? (o["img_size"] as? [Int])?.first ?? c.imgSize
            guard h.stages.count == 4, h.stages.allSatisfy({ $0 > 0 }), size % (h.patchStride * h.maskUnit) == 0 else {
                throw BackboneError("Hiera configuration over \(model): stages \(h.stages) at \(size) px (four stages; the image a multiple of \(h.patchStride * h.maskUnit) px)")
            }
            return h.config(imgSize: size)
        }
        let known: Set<String> = ["model", "embed_dim", "depth", "num_heads", "mlp_ratio", "img_size", "patch_size", "num_reg_tokens",
                                  "reg_tokens", "ref_feat_shape", "use_shared_rel_pos_bias", "use_rel_pos_bias", "rope_periods"]
        if let unknown = o.keys.filter({ !known.contains($0) }).sorted().first {
            throw BackboneError("ViT configuration over \(model): `\(unknown)` cannot be overridden (\(known.sorted().joined(separator: ", ")))")
        }
        func int(_ k: String) -> Int? { (o[k] as? Int) ?? (o[k] as? [Int])?.first }
        if let v = int("embed_dim") { c.embedDim = v }
        if let v = int("depth") { c.depth = v }
        if let v = int("num_heads") { c.numHeads = v }
        if let v = o["mlp_ratio"] as? Double { c.mlpRatio = v } else if let v = o["mlp_ratio"] as? Int { c.mlpRatio = Double(v) }
        if let v = int("img_size") { c.imgSize = v }
        if let v = int("patch_size") { c.patchSize = v }
        if let v = int("num_reg_tokens") ?? int("reg_tokens") { c.regTokens = v }
        if c.relPosBias, o["use_shared_rel_pos_bias"] as? Bool == true { c.sharedRelPosBias = true }
        if let v = o["rope_periods"] as? String {
            guard c.rope?.kind == .dinov3, v == "bf16" || v == "fp32" else { throw BackboneError("ViT configuration over \(model): rope_periods `\(v)` (bf16 or fp32, DINOv3 only)") }
            c.rope?.bf16Periods = v == "bf16"
        }
        if let v = o["ref_feat_shape"] as? [Int], v.count == 2 { c.rope?.refGrid = v } else if let v = int("ref_feat_shape") { c.rope?.refGrid = [v, v] }
        c.recomputeMLPHidden()
        try c.validate("\(model) with \(o.keys.filter { $0 != "model" }.sorted().joined(separator: ", "))")
        return c
    }
}

/// Normalisation layers (`norm_layer`).
public enum NormKind: String, Codable, Sendable { case layer, rms }

/// MLP kinds (see `ViTConfig.mlp`).
public enum MLPKind: String, Codable, Sendable { case mlp, swiglu, glu }

/// Storage of the attention's input projections.
public enum QKVLayout: String, Codable, Sendable {
    /// `attn.qkv.weight` (3D, D) and `attn.qkv.bias` (timm ViT, PE, DINOv3).
    case fused
    /// `attn.qkv.weight` with `attn.q_bias` and `attn.v_bias`, k unbiased (BEiT, EVA with fused qkv).
    case fusedQV
    /// `attn.q_proj`, `attn.k_proj` (no bias), `attn.v_proj` (EVA-02).
    case separate
}

public enum LayerScaleNames: String, Codable, Sendable { case ls, gamma }

/// A 2-D rotary position embedding as timm builds it (`pos_embed_sincos.py`).
public struct RoPESpec: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        /// `RotaryEmbeddingCat` (EVA-02, PE): integer patch coordinates (+ offset), rescaled to the
        /// reference grid, times inverse frequencies temperature^(−j/nb).
        case eva
        /// `RotaryEmbeddingDinoV3`: 0.5-centred coordinates normalised to [−1, 1], angles 2π·c / period
        /// with periods temperature^(2j / (hd/2)).
        case dinov3
    }
    public var kind: Kind
    public var temperature: Double
    public var gridOffset: Double = 0
    /// Coordinate channels (x, y) instead of (row, column) (`grid_indexing='xy'`, PE).
    public var xy = false
    /// The pretraining grid coordinates are rescaled to (`ref_feat_shape`, EVA), [rows, cols].
    public var refGrid: [Int]?
    /// Pairs (j, j + hd/2) (`rotate_half`) instead of (2j, 2j + 1).
    public var half = false
    /// DINOv3's periods rounded to bfloat16, as Meta's released weights hold them in a persistent
    /// buffer (the hub model upstream loads); timm regenerates them in f32.
    public var bf16Periods = false
    public init(kind: Kind, temperature: Double) { self.kind = kind; self.temperature = temperature }
}

public struct BackboneError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

