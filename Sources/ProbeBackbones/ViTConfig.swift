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
    /// Which family's probing protocol applies by default (`ProbingProtocol`).
    public var family: BackboneFamily = .vit
    /// Normalisation of the input pixels (per RGB channel).
    public var mean: [Float] = [0.485, 0.456, 0.406]
    public var std: [Float] = [0.229, 0.224, 0.225]

    public init(patchSize: Int, embedDim: Int, depth: Int, numHeads: Int, mlpRatio: Double = 4, imgSize: Int) {
        self.patchSize = patchSize; self.embedDim = embedDim; self.depth = depth; self.numHeads = numHeads
        // timm's Mlp: hidden = int(dim · mlp_ratio) (SO400M: 1152 · 3.7362 → 4304).
        self.mlpHidden = Int(Double(embedDim) * mlpRatio); self.imgSize = imgSize
    }

    /// The patch embedding has a bias unless the model normalises before its blocks (timm: `bias=not pre_norm`).
    public var patchBias: Bool { !preNorm }
    /// Tokens before the patches: [CLS] then registers.
    public var prefixTokens: Int { (classToken ? 1 : 0) + regTokens }
    /// The grid of the stored position embedding.
    public var posEmbedGrid: Int { imgSize / patchSize }
    /// Rows of the stored position embedding.
    public var posEmbedLength: Int { posEmbedGrid * posEmbedGrid + (noEmbedClass ? 0 : prefixTokens) }
    public var headDim: Int { embedDim / numHeads }

    /// Checks the configuration is one the forward can run.
    public func validate(_ what: String) throws {
        guard patchSize > 0, embedDim > 0, depth > 0, numHeads > 0, mlpHidden > 0, imgSize >= patchSize else {
            throw BackboneError("\(what): patch \(patchSize), width \(embedDim), depth \(depth), heads \(numHeads), MLP \(mlpHidden), image \(imgSize) is not a ViT")
        }
        guard embedDim % numHeads == 0 else { throw BackboneError("\(what): width \(embedDim) is not divisible by \(numHeads) heads") }
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

public struct BackboneError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// timm model names → configurations. A name may carry a pretrained tag (`.mae`, `.lvd142m`):
/// the architecture is the part before the dot.
public enum ViTRegistry {
    static let sizes: [String: (dim: Int, depth: Int, heads: Int)] = [
        "tiny": (192, 12, 3), "small": (384, 12, 6), "base": (768, 12, 12), "large": (1024, 24, 16), "huge": (1280, 32, 16),
    ]
    public static let clipMean: [Float] = [0.48145466, 0.4578275, 0.40821073], clipStd: [Float] = [0.26862954, 0.26130258, 0.27577711]
    /// (width, depth, heads, MLP ratio) of the sizes that are not timm's usual four.
    static let oddSizes: [String: (dim: Int, depth: Int, heads: Int, mlpRatio: Double)] = ["so400m": (1152, 27, 16, 3.7362)]

    /// Every architecture name the registry knows.
    public static var names: [String] {
        var n: [String] = []
        for s in ["tiny", "small", "base", "large"] { n.append("vit_\(s)_patch16_224") }
        n += ["vit_huge_patch14_224", "vit_small_patch14_dinov2", "vit_base_patch14_dinov2", "vit_large_patch14_dinov2",
              "vit_small_patch14_reg4_dinov2", "vit_base_patch14_reg4_dinov2", "vit_large_patch14_reg4_dinov2",
              "vit_base_patch16_clip_224", "vit_base_patch32_clip_224", "vit_large_patch14_clip_224",
              "vit_base_patch16_clip_quickgelu_224", "vit_base_patch32_clip_quickgelu_224", "vit_large_patch14_clip_quickgelu_224",
              "vit_base_patch16_siglip_224", "vit_base_patch16_siglip_256", "vit_large_patch16_siglip_256", "vit_large_patch16_siglip_384",
              "vit_so400m_patch14_siglip_224", "vit_so400m_patch14_siglip_384", "vit_base_patch16_gap_224", "vit_huge_patch14_gap_224"]
        return n
    }

    /// The configuration of a timm model name.
    /// A registry name, or a JSON file of timm constructor arguments (`*.json`).
    public static func resolve(_ model: String) throws -> ViTConfig {
        if model.hasSuffix(".json") {
            guard let text = try? String(contentsOfFile: model, encoding: .utf8) else { throw BackboneError("\(model): cannot read the ViT configuration") }
            return try ViTConfig.fromTimmArguments(text)
        }
        return try config(model)
    }

    public static func config(_ name: String) throws -> ViTConfig {
        let arch = name.split(separator: ".").first.map(String.init) ?? name
        let parts = arch.split(separator: "_").map(String.init)
        let size = parts.count >= 2 ? sizes[parts[1]].map { ($0.dim, $0.depth, $0.heads, 4.0) } ?? oddSizes[parts[1]] : nil
        guard parts.count >= 3, parts[0] == "vit", let size, parts[2].hasPrefix("patch"), let patch = Int(parts[2].dropFirst(5)) else {
            throw BackboneError("unknown model '\(name)'; known: \(names.joined(separator: ", ")) (with any .tag)")
        }
        let tag = name.split(separator: ".", maxSplits: 1).dropFirst().first.map(String.init)
        let rest = Set(parts.dropFirst(3))
        let imageSize = parts.compactMap { Int($0) }.last
        var c = ViTConfig(patchSize: patch, embedDim: size.0, depth: size.1, numHeads: size.2, mlpRatio: size.3, imgSize: imageSize ?? 224)
        if rest.contains("dinov2") {
            c.family = .dinov2
            c.imgSize = 518
            c.layerScale = true
            // The hub's DINOv2 (upstream's loader) resizes its 518-px table without antialiasing at
            // a scale of (grid + 0.1) / 37; its register models with antialiasing at the exact size.
            c.posEmbedResize = .hubOffset
            if let reg = rest.first(where: { $0.hasPrefix("reg") }), let r = Int(reg.dropFirst(3)) {
                c.regTokens = r; c.noEmbedClass = true; c.posEmbedResize = .antialias
            }
        } else if rest.contains("clip") {
            // timm's CLIP towers use GELU unless `_quickgelu_` is in the name; OpenAI's weights were
            // trained with QuickGELU, which open_clip (upstream's loader) runs for `openai` tags.
            c.family = .clip
            c.preNorm = true; c.normEps = 1e-5; c.mean = clipMean; c.std = clipStd
            c.activation = rest.contains("quickgelu") || tag == "openai" ? .quickGELU : .gelu
        } else if rest.contains("siglip") {
            // timm's SigLIP (which open_clip runs for upstream) uses exact GELU.
            c.family = .siglip
            c.classToken = false; c.activation = .gelu; c.mean = [0.5, 0.5, 0.5]; c.std = [0.5, 0.5, 0.5]
        } else if rest.contains("gap") && rest.isSubset(of: ["gap", "224"]) {
            // timm's `_gap_` ViTs (I-JEPA's H/14): no [CLS], patches pooled by their mean; the
            // base one has 16 heads.
            c.classToken = false
            if parts[1] == "base" { c.numHeads = 16 }
        } else if !(rest == ["224"] || rest.isEmpty) {
            throw BackboneError("unknown model '\(name)'; known: \(names.joined(separator: ", ")) (with any .tag)")
        }
        try c.validate(name)
        return c
    }
}
