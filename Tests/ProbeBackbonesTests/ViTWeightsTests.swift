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
