import Foundation

/// The timm families beyond `VisionTransformer` that run on the same blocks: BEiT (relative
/// position bias), EVA-02 and EVA-CLIP, DINOv3, PE (rotary embeddings, SwiGLU, sub-LN), AIMv2
/// (RMSNorm, SwiGLU). Each entry is timm 1.0.31's registered constructor, argument for argument.
enum ViTFamilies {
    static let imagenetMean: [Float] = [0.485, 0.456, 0.406], imagenetStd: [Float] = [0.229, 0.224, 0.225]

    static var names: [String] {
        ["beit_base_patch16_224", "beit_large_patch16_224", "beitv2_base_patch16_224", "beitv2_large_patch16_224",
         "eva02_tiny_patch14_224", "eva02_small_patch14_224", "eva02_base_patch14_224", "eva02_large_patch14_224",
         "eva02_tiny_patch14_336", "eva02_small_patch14_336", "eva02_base_patch14_448", "eva02_large_patch14_448",
         "eva02_base_patch16_clip_224", "eva02_large_patch14_clip_224", "eva02_large_patch14_clip_336", "eva02_enormous_patch14_clip_224",
         "vit_small_patch16_dinov3", "vit_small_plus_patch16_dinov3", "vit_base_patch16_dinov3", "vit_large_patch16_dinov3",
         "vit_huge_plus_patch16_dinov3", "vit_7b_patch16_dinov3",
         "vit_small_patch16_dinov3_qkvb", "vit_base_patch16_dinov3_qkvb", "vit_large_patch16_dinov3_qkvb",
         "vit_pe_core_tiny_patch16_384", "vit_pe_core_small_patch16_384", "vit_pe_core_base_patch16_224",
         "vit_pe_core_large_patch14_336", "vit_pe_core_gigantic_patch14_448",
         "aimv2_large_patch14_224", "aimv2_huge_patch14_224", "aimv2_1b_patch14_224", "aimv2_3b_patch14_224",
         "aimv2_large_patch14_336", "aimv2_huge_patch14_336", "aimv2_1b_patch14_336", "aimv2_3b_patch14_336",
         "aimv2_large_patch14_448", "aimv2_huge_patch14_448", "aimv2_1b_patch14_448", "aimv2_3b_patch14_448",
         "hiera_tiny_224", "hiera_small_224", "hiera_base_224", "hiera_base_plus_224", "hiera_large_224", "hiera_huge_224",
         "franca_vitb14", "franca_vitl14", "franca_vitg14"]
    }

    /// The configuration of one of these architectures, nil for a name of another family.
    static func config(_ arch: String) throws -> ViTConfig? {
        let parts = arch.split(separator: "_").map(String.init)
        guard let first = parts.first else { return nil }
        switch first {
        case "beit", "beitv2": return try beit(arch, v2: first == "beitv2", parts)
        case "eva02": return try eva02(arch, parts)
        case "aimv2": return try aimv2(arch, parts)
        case "hiera": return try hiera(arch)
        case "franca": return try franca(arch)
        case "vit" where parts.last == "dinov3" || parts.last == "qkvb": return try dinov3(arch, parts)
        case "vit" where parts.count > 2 && parts[1] == "pe" && parts[2] == "core": return try peCore(arch, parts)
        default: return nil
        }
    }

    static func unknown(_ arch: String) -> BackboneError {
        BackboneError("unknown model '\(arch)'; known: \(ViTRegistry.names.joined(separator: ", ")) (with any .tag)")
    }

    static func beit(_ arch: String, v2: Bool, _ parts: [String]) throws -> ViTConfig {
        // beit(v2)_{base,large}_patch16_224: relative position bias per block, no absolute table,
        // q/v biases, LayerScale (0.1 v1, 1e-5 v2), mean pooling (so no final norm).
        guard parts.count == 4, parts[2] == "patch16", parts[3] == "224", let size = ["base": (768, 12, 12), "large": (1024, 24, 16)][parts[1]] else { throw unknown(arch) }
        var c = ViTConfig(patchSize: 16, embedDim: size.0, depth: size.1, numHeads: size.2, imgSize: 224)
        c.family = .beit
        c.qkvLayout = .fusedQV; c.layerScale = true; c.layerScaleNames = .gamma
        c.relPosBias = true; c.absPosEmbed = false; c.finalNorm = false
        if !v2 { c.mean = [0.5, 0.5, 0.5]; c.std = [0.5, 0.5, 0.5] }
        return c
    }

    static func franca(_ arch: String) throws -> ViTConfig {
        // Franca (valeoai/Franca's hub models, not a timm name): DINOv2's ViT with its fused SwiGLU
        // FFN — one packed `w12` (gate then value) of width align8(int(4D·2/3)) per half, read as
        // timm's packed GluMlp — LayerScale, q/k/v biases, no registers, a 37×37 table resized as
        // the DINOv2 hub resizes it (offset 0.1, no antialias). Its checkpoints' names (`teacher`,
        // chunked blocks, `w12`/`w3`) become these by tools/convert_checkpoint.py.
        let sizes = ["franca_vitb14": (768, 12, 12), "franca_vitl14": (1024, 24, 16), "franca_vitg14": (1536, 40, 24)]
        guard let size = sizes[arch] else { throw unknown(arch) }
        var c = ViTConfig(patchSize: 14, embedDim: size.0, depth: size.1, numHeads: size.2, mlpRatio: 8.0 / 3.0, imgSize: 518)
        c.family = .dinov2
        c.layerScale = true
        c.posEmbedResize = .hubOffset
        c.mlp = .glu; c.activation = .silu; c.mlpAlign = 8
        c.recomputeMLPHidden()
        return c
    }

    static func eva02(_ arch: String, _ parts: [String]) throws -> ViTConfig {
        // eva02_{size}_patch14_{res} (MIM) and eva02_{size}_patch{p}_clip_{res} (EVA-CLIP towers).
        let sizes = ["tiny": (192, 12, 3), "small": (384, 12, 6), "base": (768, 12, 12), "large": (1024, 24, 16), "enormous": (1792, 64, 16)]
        guard parts.count >= 4, let size = sizes[parts[1]], parts[2].hasPrefix("patch"), let p = Int(parts[2].dropFirst(5)),
              let res = Int(parts.last!), names.contains(arch) else { throw unknown(arch) }
        let clip = parts.contains("clip")
        var c = ViTConfig(patchSize: p, embedDim: size.0, depth: size.1, numHeads: size.2, mlpRatio: 4.0 * 2 / 3, imgSize: res)
        c.family = clip ? .evaclip : .eva
        c.mean = ViTRegistry.clipMean; c.std = ViTRegistry.clipStd
        if parts[1] == "enormous" {
            // EVA-02-CLIP E-14: residual post-norm blocks, GELU MLP, absolute positions only.
            c.mlpRatio = 15360.0 / 1792; c.postNorm = true; c.qkvLayout = .fusedQV
            c.recomputeMLPHidden()
            return c
        }
        var rope = RoPESpec(kind: .eva, temperature: 10000)
        rope.refGrid = [16, 16]
        c.rope = rope
        // tiny/small: packed GluMlp, fused qkv; base/large: SwiGLU with its sub-LN, separate q/k/v.
        if parts[1] == "tiny" || parts[1] == "small" {
            c.mlp = .glu; c.qkvLayout = .fusedQV
        } else {
            c.mlp = .swiglu; c.mlpNorm = true; c.qkvLayout = .separate
        }
        c.attnNorm = clip
        // MIM models pool by the mean with fc_norm, so `forward_features` has no final norm; the
        // CLIP towers pool the [CLS] token after it.
        c.finalNorm = clip
        return c
    }

    static func dinov3(_ arch: String, _ parts: [String]) throws -> ViTConfig {
        let sizes: [String: (Int, Int, Int, Double, MLPKind, Int)] = [
            "small": (384, 12, 6, 4, .mlp, 0), "small_plus": (384, 12, 6, 4, .swiglu, 8), "base": (768, 12, 12, 4, .mlp, 0),
            "large": (1024, 24, 16, 4, .mlp, 0), "huge_plus": (1280, 32, 20, 4, .swiglu, 8), "7b": (4096, 40, 32, 2, .swiglu, 64),
        ]
        let qkvb = parts.last == "qkvb"
        let body = qkvb ? Array(parts.dropLast()) : parts
        guard body.last == "dinov3", let pi = body.firstIndex(where: { $0.hasPrefix("patch") }), body[pi] == "patch16",
              let size = sizes[body[1..<pi].joined(separator: "_")], names.contains(arch) else { throw unknown(arch) }
        var c = ViTConfig(patchSize: 16, embedDim: size.0, depth: size.1, numHeads: size.2, mlpRatio: size.3, imgSize: 224)
        c.family = .dinov3
        c.regTokens = 4; c.absPosEmbed = false; c.layerScale = true; c.layerScaleNames = .gamma
        c.qkvBias = qkvb; c.qkvLayout = .fusedQV; c.normEps = 1e-5
        // timm's SwiGLU (split fc1_g / fc1_x) whenever the hidden width is aligned.
        c.mlp = size.4; c.mlpAlign = size.5
        c.recomputeMLPHidden()
        var rope = RoPESpec(kind: .dinov3, temperature: 100)
        rope.half = true
        // Upstream loads DINOv3 from Meta's hub, whose weights carry the periods in bfloat16.
        rope.bf16Periods = true
        c.rope = rope
        return c
    }

    static func peCore(_ arch: String, _ parts: [String]) throws -> ViTConfig {
        let table: [String: (Int, Int, Int, Int, Int, Double, Bool)] = [   // dim, depth, heads, patch, ref grid, mlp ratio, cls
            "vit_pe_core_tiny_patch16_384": (192, 12, 3, 16, 24, 4, true), "vit_pe_core_small_patch16_384": (384, 12, 6, 16, 24, 4, true),
            "vit_pe_core_base_patch16_224": (768, 12, 12, 16, 14, 4, true), "vit_pe_core_large_patch14_336": (1024, 24, 16, 14, 24, 4, true),
            "vit_pe_core_gigantic_patch14_448": (1536, 50, 16, 14, 32, 8960.0 / 1536, false),
        ]
        guard let e = table[arch], let res = Int(parts.last!) else { throw unknown(arch) }
        var c = ViTConfig(patchSize: e.3, embedDim: e.0, depth: e.1, numHeads: e.2, mlpRatio: e.5, imgSize: res)
        c.family = .pe
        c.classToken = e.6; c.preNorm = true; c.normEps = 1e-5; c.attnPoolHeads = 8
        c.mean = [0.5, 0.5, 0.5]; c.std = [0.5, 0.5, 0.5]
        var rope = RoPESpec(kind: .eva, temperature: 10000)
        rope.refGrid = [e.4, e.4]; rope.xy = true; rope.gridOffset = e.6 ? 1 : 0
        c.rope = rope
        return c
    }

    static func hiera(_ arch: String) throws -> ViTConfig {
        let table: [String: (Int, Int, [Int])] = [
            "hiera_tiny_224": (96, 1, [1, 2, 7, 2]), "hiera_small_224": (96, 1, [1, 2, 11, 2]), "hiera_base_224": (96, 1, [2, 3, 16, 3]),
            "hiera_base_plus_224": (112, 2, [2, 3, 16, 3]), "hiera_large_224": (144, 2, [2, 6, 36, 4]), "hiera_huge_224": (256, 4, [2, 6, 36, 4]),
        ]
        guard let e = table[arch] else { throw unknown(arch) }
        return HieraSpec(embedDim: e.0, heads: e.1, stages: e.2).config(imgSize: 224)
    }

    static func aimv2(_ arch: String, _ parts: [String]) throws -> ViTConfig {
        let sizes = ["large": (1024, 8), "huge": (1536, 12), "1b": (2048, 16), "3b": (3072, 24)]
        guard parts.count == 4, let size = sizes[parts[1]], parts[2] == "patch14", let res = Int(parts[3]), [224, 336, 448].contains(res) else { throw unknown(arch) }
        var c = ViTConfig(patchSize: 14, embedDim: size.0, depth: 24, numHeads: size.1, mlpRatio: 2.75, imgSize: res)
        c.family = .aimv2
        c.classToken = false; c.qkvBias = false; c.projBias = false; c.norm = .rms; c.normEps = 1e-5; c.patchNorm = true
        c.mlp = .swiglu; c.activation = .silu
        c.mean = ViTRegistry.clipMean; c.std = ViTRegistry.clipStd
        return c
    }
}
