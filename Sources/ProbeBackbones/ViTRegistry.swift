import Foundation

/// timm model names → configurations. A name may carry a pretrained tag (`.mae`, `.lvd142m`):
/// the architecture is the part before the dot.
public enum ViTRegistry {
    static let sizes: [String: (dim: Int, depth: Int, heads: Int)] = [
        "tiny": (192, 12, 3), "small": (384, 12, 6), "base": (768, 12, 12), "large": (1024, 24, 16), "huge": (1280, 32, 16),
    ]
    public static let clipMean: [Float] = [0.48145466, 0.4578275, 0.40821073], clipStd: [Float] = [0.26862954, 0.26130258, 0.27577711]
    /// (width, depth, heads, MLP ratio) of the sizes that are not timm's usual four.
    static let oddSizes: [String: (dim: Int, depth: Int, heads: Int, mlpRatio: Double)] = ["so400m": (1152, 27, 16, 3.7362),
                                                                                           "gigantic": (1664, 48, 16, 64.0 / 13)]

    /// Every architecture name the registry knows.
    public static var names: [String] {
        var n: [String] = []
        for s in ["tiny", "small", "base", "large"] { n.append("vit_\(s)_patch16_224") }
        n += ["vit_huge_patch14_224", "vit_small_patch14_dinov2", "vit_base_patch14_dinov2", "vit_large_patch14_dinov2",
              "vit_small_patch14_reg4_dinov2", "vit_base_patch14_reg4_dinov2", "vit_large_patch14_reg4_dinov2",
              "vit_base_patch16_clip_224", "vit_base_patch32_clip_224", "vit_large_patch14_clip_224",
              "vit_base_patch16_clip_quickgelu_224", "vit_base_patch32_clip_quickgelu_224", "vit_large_patch14_clip_quickgelu_224",
              "vit_base_patch16_siglip_224", "vit_base_patch16_siglip_256", "vit_large_patch16_siglip_256", "vit_large_patch16_siglip_384",
              "vit_so400m_patch14_siglip_224", "vit_so400m_patch14_siglip_384", "vit_base_patch16_gap_224", "vit_huge_patch14_gap_224",
              "vit_huge_patch14_clip_224", "vit_gigantic_patch14_clip_224", "vit_gigantic_patch14_clip_378"]
        return n + ViTFamilies.names
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
        if let c = try ViTFamilies.config(arch) { return c }
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
