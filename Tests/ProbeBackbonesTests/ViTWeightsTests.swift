import Foundation
import ProbeBackbones
import ProbeKernels
import ProbeTestSupport
import SafeTensors
import Testing

/// Checkpoints are checked before anything runs: another model's, a damaged file, non-finite
/// weights are refused with the file and the tensors named.
@Suite struct ViTWeightsTests {
    /// A small MAE-style checkpoint with timm's names, written from a golden.
    func checkpoint(_ dir: URL, mutate: (inout [String: ([Float], [Int])]) -> Void = { _ in }) throws -> (String, ViTConfig) {
        let file = try #require(goldenFiles { $0 == .vit }.first { $0.hasPrefix("vit_mae") })
        let g = try ViTGolden(goldensDirectory.appendingPathComponent(file).path)
        var tensors: [String: ([Float], [Int])] = [:]
        for n in g.file.names where !n.hasPrefix("expected.") && !n.hasPrefix("input.") { tensors[n] = (try g.file.floats(n), try g.file.entry(n).shape) }
        mutate(&tensors)
        var w = SafeTensorsWriter()
        for (n, (v, s)) in tensors { w.add(n, v, shape: s) }
        w.add("head.weight", [Float](repeating: 0, count: 10 * g.config.embedDim), shape: [10, g.config.embedDim])   // timm's classifier: ignored
        let path = dir.appendingPathComponent("model.safetensors").path
        try w.write(to: path)
        return (path, g.config)
    }

    @Test func timmNamesLoadAndMismatchesAreListed() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (path, config) = try checkpoint(dir)
        _ = try ViTWeights(config: config, file: try SafeTensorsFile(path: path), model: "mae")
        // Another model: deeper and with LayerScale.
        var other = config; other.depth += 1; other.layerScale = true
        #expect { try ViTWeights(config: other, file: try SafeTensorsFile(path: path), model: "vit_other") } throws: { e in
            let t = "\(e)"
            return t.contains("model.safetensors") && t.contains("missing") && t.contains("blocks.\(config.depth).attn.qkv.weight") && t.contains("ls1.gamma")
        }
        var wide = config; wide.embedDim *= 2; wide.mlpHidden *= 2
        #expect { try ViTWeights(config: wide, file: try SafeTensorsFile(path: path), model: "vit_wide") } throws: { "\($0)".contains("mis-shaped") && "\($0)".contains("blocks.{0-2}.attn.proj.bias: file [64]") }
        // A truncated file.
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let cut = dir.appendingPathComponent("cut.safetensors")
        try data.prefix(data.count / 2).write(to: cut)
        #expect { try ViTWeights(config: config, file: try SafeTensorsFile(path: cut.path), model: "mae") } throws: { "\($0)".contains("cut.safetensors") && "\($0)".contains("outside") }
    }

    @Test func nonFiniteWeightsAreRefusedNamingTheTensor() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (path, config) = try checkpoint(dir) { t in
            var v = t["blocks.1.mlp.fc1.weight"]!
            v.0[7] = .nan
            t["blocks.1.mlp.fc1.weight"] = v
        }
        #expect { try ViTWeights(config: config, file: try SafeTensorsFile(path: path), model: "mae") } throws: { e in
            "\(e)".contains("blocks.1.mlp.fc1.weight") && "\(e)".contains("non-finite") && "\(e)".contains("model.safetensors")
        }
    }

    /// MaskFeat's released checkpoints hold NaN in the final norm, which upstream never applies:
    /// they load, tap the last block as upstream does, and a run after the norm is refused naming it.
    @Test func aDamagedFinalNormRefusesOnlyTheTapsAfterIt() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (path, config) = try checkpoint(dir) { t in
            var v = t["norm.weight"]!
            v.0 = v.0.map { _ in .nan }
            t["norm.weight"] = v
        }
        let w = try ViTWeights(config: config, file: try SafeTensorsFile(path: path), model: "maskfeat")
        #expect(w.damagedFinalNorm?.contains("norm.weight") == true)
        let ctx = try makeContext()
        let vit = try VisionTransformer(weights: w, ctx: ctx, precision: .fp32)
        let images = try ctx.tensor([Float](repeating: 0.1, count: 3 * 32 * 32), [1, 3, 32, 32])
        let out = try vit.forward(images, taps: [.block(config.depth - 1)])
        #expect(try ctx.read(out[.block(config.depth - 1)]!).allSatisfy { $0.isFinite })
        #expect { try vit.forward(images, taps: [.norm]) } throws: { "\($0)".contains("norm.weight") && "\($0)".contains("--blocks -1") }
        expectNoValidationMessages(ctx)
    }

    /// The newer families' registry names resolve to timm's constructor arguments.
    @Test func familyRegistryNames() throws {
        let beit = try ViTRegistry.config("beitv2_base_patch16_224.in1k_ft_in22k")
        #expect(beit.family == .beit && beit.relPosBias && !beit.absPosEmbed && beit.layerScaleNames == .gamma && beit.qkvLayout == .fusedQV && !beit.finalNorm)
        let eva = try ViTRegistry.config("eva02_base_patch14_224.mim_in22k")
        #expect(eva.family == .eva && eva.mlp == .swiglu && eva.mlpNorm && eva.qkvLayout == .separate && eva.mlpHidden == 2048 && eva.rope?.refGrid == [16, 16] && !eva.finalNorm)
        let evaTiny = try ViTRegistry.config("eva02_tiny_patch14_224")
        #expect(evaTiny.mlp == .glu && evaTiny.qkvLayout == .fusedQV && evaTiny.mlpHidden == 512)
        let evaClip = try ViTRegistry.config("eva02_large_patch14_clip_224")
        #expect(evaClip.family == .evaclip && evaClip.attnNorm && evaClip.finalNorm && evaClip.depth == 24)
        let e14 = try ViTRegistry.config("eva02_enormous_patch14_clip_224")
        #expect(e14.postNorm && e14.rope == nil && e14.mlpHidden == 15360 && e14.embedDim == 1792 && e14.depth == 64)
        let d3 = try ViTRegistry.config("vit_large_patch16_dinov3.lvd1689m")
        #expect(d3.family == .dinov3 && d3.regTokens == 4 && d3.rope?.kind == .dinov3 && d3.rope?.half == true && !d3.qkvBias && d3.normEps == 1e-5)
        let d7 = try ViTRegistry.config("vit_7b_patch16_dinov3")
        #expect(d7.mlp == .swiglu && d7.mlpHidden == 8192 && d7.embedDim == 4096 && d7.depth == 40)
        let pe = try ViTRegistry.config("vit_pe_core_large_patch14_336")
        #expect(pe.family == .pe && pe.preNorm && pe.attnPoolHeads == 8 && pe.rope?.xy == true && pe.rope?.gridOffset == 1 && pe.imgSize == 336)
        let aim = try ViTRegistry.config("aimv2_large_patch14_224.apple_pt")
        #expect(aim.norm == .rms && aim.patchNorm && !aim.classToken && !aim.projBias && aim.mlpHidden == 2816 && aim.numHeads == 8)
        let hiera = try ViTRegistry.config("hiera_base_224.mae")
        #expect(hiera.family == .hiera && hiera.embedDim == 768 && hiera.depth == 24 && hiera.patchSize == 32 && !hiera.classToken)
        let bigG = try ViTRegistry.config("vit_gigantic_patch14_clip_378")
        #expect(bigG.embedDim == 1664 && bigG.mlpHidden == 8192 && bigG.depth == 48 && bigG.imgSize == 378)
        #expect(throws: BackboneError.self) { try ViTRegistry.config("eva02_medium_patch14_224") }
        #expect(throws: BackboneError.self) { try ViTConfig.fromTimmArguments(#"{"model": "eva02_base_patch14_224", "swiglu_mlp": false}"#) }
    }

    @Test func registryNamesAndTimmArguments() throws {
        let mae = try ViTRegistry.config("vit_base_patch16_224.mae")
        #expect(mae.embedDim == 768 && mae.depth == 12 && mae.numHeads == 12 && mae.patchSize == 16 && mae.posEmbedLength == 197)
        let reg = try ViTRegistry.config("vit_small_patch14_reg4_dinov2.lvd142m")
        #expect(reg.regTokens == 4 && reg.noEmbedClass && reg.layerScale && reg.posEmbedLength == 37 * 37 && reg.prefixTokens == 5)
        #expect(reg.family == .dinov2 && reg.posEmbedResize == .antialias)
        let dino = try ViTRegistry.config("vit_base_patch14_dinov2.lvd142m")
        #expect(dino.family == .dinov2 && dino.posEmbedResize == .hubOffset && dino.imgSize == 518)
        #expect(ProbingProtocol.upstream(for: dino).inputSize == 224 && ProbingProtocol.upstream(for: dino).tap == "norm")
        // CLIP: QuickGELU for OpenAI's weights (as open_clip runs them) and timm's _quickgelu_ names; GELU otherwise.
        let clip = try ViTRegistry.config("vit_base_patch16_clip_224.openai")
        #expect(clip.preNorm && !clip.patchBias && clip.activation == .quickGELU && clip.normEps == 1e-5 && clip.family == .clip)
        #expect(try ViTRegistry.config("vit_base_patch16_clip_224.laion2b").activation == .gelu)
        #expect(try ViTRegistry.config("vit_base_patch16_clip_224").activation == .gelu)
        #expect(try ViTRegistry.config("vit_base_patch16_clip_quickgelu_224.metaclip_400m").activation == .quickGELU)
        #expect(ProbingProtocol.upstream(for: clip).transforms == .clip)
        let siglip = try ViTRegistry.config("vit_base_patch16_siglip_224.webli")
        #expect(!siglip.classToken && siglip.activation == .gelu && siglip.posEmbedLength == 196 && siglip.family == .siglip)
        #expect(ProbingProtocol.upstream(for: siglip).transforms == .siglip)
        let so400m = try ViTRegistry.config("vit_so400m_patch14_siglip_224")
        #expect(so400m.embedDim == 1152 && so400m.depth == 27 && so400m.numHeads == 16 && so400m.mlpHidden == 4304 && so400m.posEmbedLength == 256)
        #expect(ProbingProtocol.upstream(for: mae).tap == "-1" && ProbingProtocol.upstream(for: mae).transforms == .mae)
        // timm's _gap_ ViTs (values read from timm 1.0.31): no [CLS], base with 16 heads, 196 / 256 position rows.
        let gap = try ViTRegistry.config("vit_base_patch16_gap_224")
        #expect(!gap.classToken && gap.numHeads == 16 && gap.posEmbedLength == 196 && gap.family == .vit)
        let ijepa = try ViTRegistry.config("vit_huge_patch14_gap_224.in1k_ijepa")
        #expect(!ijepa.classToken && ijepa.numHeads == 16 && ijepa.embedDim == 1280 && ijepa.depth == 32 && ijepa.posEmbedLength == 256)
        #expect { try ViTRegistry.config("resnet50") } throws: { "\($0)".contains("unknown model") }
    }

    /// A DINOv2 with registers saved by timm at img_size=224 holds a 16×16 position table where
    /// the registry's 518-px entry expects 37×37: accepted as its own grid (the forward resizes
    /// from it, as timm's checkpoint filter does when it loads); a table of no square grid is
    /// still refused as mis-shaped.
    @Test func aPositionTableOfAnotherGridIsAccepted() throws {
        let dir = try temporaryDirectory("grid")
        var registry = try ViTConfig.fromTimmArguments(#"{"patch_size": 14, "embed_dim": 24, "depth": 1, "num_heads": 2, "img_size": 518, "reg_tokens": 4, "no_embed_class": true, "init_values": 1e-5}"#)
        var saved = registry
        saved.imgSize = 224
        let path = dir.appendingPathComponent("at224.safetensors").path
        try ViTWeights.random(saved, seed: 3).write(to: path)
        let w = try ViTWeights(config: registry, file: try SafeTensorsFile(path: path), model: "vit_small_patch14_reg4_dinov2")
        #expect(w.config.posEmbedGrid == 16 && w.config.posEmbedLength == 256)
        #expect(w.storedGridNote?.contains("16×16 grid (224 px), not vit_small_patch14_reg4_dinov2's 37×37") == true, "\(w.storedGridNote ?? "")")
        #expect(w.positionEmbedding(gridH: 16, gridW: 16) == w["pos_embed"])
        registry.regTokens = 0; registry.noEmbedClass = false   // 256 rows are then 1 + 255: no square grid
        #expect { try ViTWeights(config: registry, file: try SafeTensorsFile(path: path), model: "m") } throws: { "\($0)".contains("mis-shaped") || "\($0)".contains("unexpected") }
    }
}
