import Foundation
import ProbeBackbones
import ProbeKernels
import ProbeTestSupport
import SafeTensors
import Testing

/// `--backbone-mode train`: upstream's frozen backbone in train mode while the heads train
/// (`TrainModeNoise`). The goldens (`Tests/Goldens/trainmode`, Bench/tools/make_trainmode_goldens.py)
/// run upstream's own code in train mode with its random draws fixed and recorded — SimMIM's
/// DropPath factors, DINOv3's per-block RoPE rescale — and VulkanProbe's forward, given the same
/// draws, must give the same tokens within 1e-4 relative (fp32 summation order: ~1e-6 here). The
/// same forward in eval mode is far from them, so the goldens see the noise.
@Suite(.serialized) struct TrainModeTests {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Goldens/trainmode")

    static func load(_ name: String) throws -> (SafeTensorsFile, ViTConfig, VisionTransformer, KernelContext, Tensor) {
        let file = try SafeTensorsFile(path: dir.appendingPathComponent("\(name).safetensors").path)
        let config = try ViTConfig.fromTimmArguments(try #require(file.metadata["config"]))
        let weights = try ViTWeights(config: config, file: file, model: "train-mode golden \(name)") {
            $0.hasPrefix("expected.") || $0.hasPrefix("input.") || $0.hasPrefix("draw.")
        }
        let ctx = try makeContext()
        let vit = try VisionTransformer(weights: weights, ctx: ctx, precision: .fp32)
        let images = try ctx.tensor(try file.floats("input.image"), try file.entry("input.image").shape)
        return (file, weights.config, vit, ctx, images)
    }

    @Test func simmimDropPathIsUpstreamsTrainMode() throws {
        let (file, config, vit, ctx, images) = try Self.load("simmim")
        let noise = try #require(TrainModeNoise.upstream(for: config))
        #expect(noise.dropPath == [0, 0.05, 0.1], "upstream's SimMIM loader: linspace(0, 0.1, depth)")
        var factors: [(attn: [Float], mlp: [Float])?] = []
        for i in 0..<config.depth {
            if file.entries["draw.block\(i).attn"] != nil {
                factors.append((try file.floats("draw.block\(i).attn"), try file.floats("draw.block\(i).mlp")))
            } else {
                factors.append(nil)
                #expect(noise.dropPath[i] == 0)
            }
        }
        #expect(factors.contains { $0?.mlp.contains(0) == true || $0?.attn.contains(0) == true }, "the golden drops a branch somewhere")
        let last = TokenTap.block(config.depth - 1)
        let draw = TrainModeNoise.Draw(branchFactors: factors, ropeScale: Array(repeating: nil, count: config.depth))
        let train = try ctx.read(try vit.forward(images, taps: [last], noise: draw)[last]!)
        let want = try file.floats("expected.tokens")
        let err = relativeError(train, want)
        #expect(err <= 1e-4, "train mode: \(err) from upstream's")
        let eval = relativeError(try ctx.read(try vit.forward(images, taps: [last])[last]!), want)
        #expect(eval > 1e-2, "eval mode is \(eval) from upstream's train-mode tokens: the golden does not see the drop path")
        print("simmim train mode: \(err) (eval mode: \(eval))")
        expectNoValidationMessages(ctx)
    }

    @Test func dinov3RopeRescaleIsUpstreamsTrainMode() throws {
        let (file, config, vit, ctx, images) = try Self.load("dinov3")
        let noise = try #require(TrainModeNoise.upstream(for: config))
        #expect(noise.ropeRescale == 2 && noise.dropPath.allSatisfy { $0 == 0 })
        let scales = try file.floats("draw.rope_scale")
        #expect(scales.count == config.depth && scales.allSatisfy { (0.5...2).contains($0) })
        let draw = TrainModeNoise.Draw(branchFactors: Array(repeating: nil, count: config.depth), ropeScale: scales.map { Optional($0) })
        let out = try vit.forward(images, taps: [.norm], noise: draw)[.norm]!
        let prefix = 1 + config.regTokens, total = out.shape[1]
        let tokens = try ctx.read(try ctx.contiguous(try out.slice(axis: 1, prefix..<total)))
        let cls = try ctx.read(try ctx.contiguous(try out.slice(axis: 1, 0..<1)))
        let err = max(relativeError(tokens, try file.floats("expected.tokens")), relativeError(cls, try file.floats("expected.cls")))
        #expect(err <= 1e-4, "train mode: \(err) from upstream's")
        let evalOut = try vit.forward(images, taps: [.norm])[.norm]!
        let eval = relativeError(try ctx.read(try ctx.contiguous(try evalOut.slice(axis: 1, prefix..<total))), try file.floats("expected.tokens"))
        #expect(eval > 1e-2, "eval mode is \(eval) from upstream's train-mode tokens: the golden does not see the rescale")
        print("dinov3 train mode: \(err) (eval mode: \(eval))")
        expectNoValidationMessages(ctx)
    }

    /// The draws: reproducible from (seed, epoch, batch), different across batches, drop rates
    /// and mean factor as timm's DropPath (E[factor] = 1), rescale factors log-uniform in [½, 2].
    @Test func drawsAreReproducibleAndDistributedAsUpstreams() throws {
        let beit = try ViTRegistry.resolve("beitv2_base_patch16_224")
        let noise = try #require(TrainModeNoise.upstream(for: beit))
        let a = noise.draw(seed: 7, epoch: 3, index: 5, batch: 64), b = noise.draw(seed: 7, epoch: 3, index: 5, batch: 64)
        let c = noise.draw(seed: 7, epoch: 3, index: 6, batch: 64)
        #expect(a.branchFactors.map { $0?.attn } == b.branchFactors.map { $0?.attn } && a.branchFactors.map { $0?.mlp } == b.branchFactors.map { $0?.mlp })
        #expect(a.branchFactors.map { $0?.attn } != c.branchFactors.map { $0?.attn })
        // The last block (p = 0.1) over many draws: dropped ≈ 10%, mean factor ≈ 1.
        var dropped = 0, total = 0, sum = 0.0
        for k in 0..<200 {
            let d = noise.draw(seed: 1, epoch: 0, index: k, batch: 50)
            for f in d.branchFactors[beit.depth - 1]!.attn { total += 1; sum += Double(f); if f == 0 { dropped += 1 } }
        }
        let rate = Double(dropped) / Double(total)
        #expect(abs(rate - 0.1) < 0.015, "drop rate \(rate) (10 000 draws: σ 0.003)")
        #expect(abs(sum / Double(total) - 1) < 0.02, "mean factor \(sum / Double(total))")
        let dino = try #require(TrainModeNoise.upstream(for: try ViTRegistry.resolve("vit_base_patch16_dinov3")))
        let logs = (0..<500).flatMap { dino.draw(seed: 2, epoch: 1, index: $0, batch: 1).ropeScale.map { log(Double($0!)) } }
        #expect(logs.allSatisfy { abs($0) <= log(2) + 1e-6 } && abs(logs.reduce(0, +) / Double(logs.count)) < 0.05)
        #expect(TrainModeNoise.upstream(for: try ViTRegistry.resolve("vit_base_patch16_224")) == nil, "models_vit rows have no train-time randomness")
    }
}
