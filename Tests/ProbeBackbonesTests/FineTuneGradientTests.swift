import Foundation
import ProbeAutodiff
import ProbeBackbones
import ProbeKernels
import ProbeTestSupport
import SafeTensors
import Testing

/// A fine-tuning golden (`Tests/Goldens/finetune`, written by `Bench/tools/make_finetune_goldens.py`):
/// timm's model at full width and small depth, every weight a formula both sides evaluate, and
/// PyTorch autograd's gradients of L = Σ forward_features(x) ⊙ C for every parameter.
struct FineTuneGolden {
    let file: SafeTensorsFile
    let config: ViTConfig
    let weights: ViTWeights
    let images: [Float]
    let imageShape: [Int]
    let lossWeights: [Float]

    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Goldens/finetune")

    init(_ name: String) throws {
        file = try SafeTensorsFile(path: Self.dir.appendingPathComponent(name + ".safetensors").path)
        config = try ViTConfig.fromTimmArguments(file.metadata["config"]!)
        let rules = try JSONSerialization.jsonObject(with: Data(file.metadata["weights"]!.utf8)) as! [String: [Double]]
        // The weights through a timm-named file, as a user's checkpoint would come.
        var w = SafeTensorsWriter()
        for (name, shape) in ViTWeights.expectedShapes(config).sorted(by: { $0.key < $1.key }) {
            let r = try #require(rules[name], "\(name) has no weight rule in the golden")
            w.add(name, FormulaValues.values(name, count: shape.reduce(1, *), offset: r[0], scale: r[1]), shape: shape)
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("finetune-\(name)-\(getpid()).safetensors").path
        try w.write(to: path)
        defer { try? FileManager.default.removeItem(atPath: path) }
        weights = try ViTWeights(config: config, file: try SafeTensorsFile(path: path), model: name)
        images = try file.floats("images")
        imageShape = try file.entry("images").shape
        lossWeights = FormulaValues.values("loss.C", count: try file.entry("expected.out").shape.reduce(1, *), offset: 0, scale: 1)
    }

    /// Each trained tensor's gradient against autograd's, as one relative error per stored
    /// quantity: the whole gradient (small tensors), else its row sums and column sums (against
    /// the sums of |g|), Σg², and 256 sampled entries (against the tensor's RMS: an entry may be
    /// near zero).
    func errors(_ grads: [(String, [Float])]) throws -> [(String, Double)] {
        var out: [(String, Double)] = []
        for (name, g) in grads {
            if file.entries["grad." + name] != nil {
                out.append((name, relativeError(g, try file.floats("grad." + name))))
                continue
            }
            let rows = try file.floats("grad.\(name).rows").count, cols = g.count / rows
            var rowSums = [Double](repeating: 0, count: rows), colSums = [Double](repeating: 0, count: cols), sumsq = 0.0
            var rowAbs = rowSums, colAbs = colSums
            for r in 0..<rows {
                for c in 0..<cols {
                    let v = Double(g[r * cols + c])
                    rowSums[r] += v; colSums[c] += v; rowAbs[r] += abs(v); colAbs[c] += abs(v); sumsq += v * v
                }
            }
            // A sum may cancel (the gradient into a LayerNorm's input sums to ~0 over its
            // features): each is judged against the size of its terms, Σ|g|.
            func sumsError(_ got: [Double], _ abs: [Double], _ key: String) throws -> Double {
                let want = try file.floats(key).map(Double.init)
                return norm(zip(got, want).map { $0 - $1 }) / norm(abs)
            }
            out.append((name + ".rows", try sumsError(rowSums, rowAbs, "grad.\(name).rows")))
            out.append((name + ".cols", try sumsError(colSums, colAbs, "grad.\(name).cols")))
            let want = Double(try file.floats("grad.\(name).sumsq")[0])
            out.append((name + ".sumsq", abs(sumsq - want) / want))
            let index = try file.floats("grad.\(name).index").map { Int($0) }, value = try file.floats("grad.\(name).value")
            let rms = (want / Double(g.count)).squareRoot()
            out.append((name + ".sample", zip(index, value).map { abs(Double(g[$0]) - Double($1)) }.max()! / rms))
        }
        return out
    }
}

/// The backward of the fine-tuned ViT against PyTorch autograd through timm's own model.
@Suite(.serialized) struct FineTuneGradientTests {
    /// fp32 throughout: the forward lands within 1e-6 of timm's (summation order), and the
    /// gradients — three blocks' chains of GEMMs, softmax and LayerNorm backwards, each an fp32
    /// sum of ≤ 1536 terms — within 1e-4 relative (measured: ~1e-6). A gradient that lost a term
    /// (a LayerScale, a residual, the resize) is off by O(1).
    static let bound = 1e-4

    func run(_ golden: String, _ scope: FineTuneScope, checkpointed: Bool = false) throws {
        let g = try FineTuneGolden(golden)
        let ctx = try makeContext()
        let gpu = GPUBackend(ctx)
        let vit = try VisionTransformer(weights: g.weights, ctx: ctx, precision: .fp32)
        let trained = try TrainableViT(weights: g.weights, scope: scope, appliesNorm: true, backend: gpu)
        trained.checkpointBlocks = checkpointed
        let images = try ctx.tensor(g.images, g.imageShape)
        let lay = vit.layout(height: g.imageShape[2], width: g.imageShape[3])
        let input = try vit.fineTuneInput(images, firstBlock: trained.firstBlock, embeddings: scope.trainsEmbeddings)
        let graph = Graph(gpu, training: true)
        let (tokens, params) = try trained.forward(graph, input: input, gridH: lay.gridH, gridW: lay.gridW, train: true)
        let forwardError = relativeError(try ctx.read(tokens.value), try g.file.floats("expected.out"))
        #expect(forwardError <= 1e-5, "\(golden) \(scope): forward_features relative error \(forwardError)")
        try graph.backward(tokens, grad: try ctx.tensor(g.lossWeights, try g.file.entry("expected.out").shape))
        let names = Set(params.map(\.0))
        let expected = TrainableViT<GPUBackend>.trainedNames(g.config, scope: scope, appliesNorm: true)
        #expect(names == Set(expected))
        var grads: [(String, [Float])] = []
        for (name, v) in params {
            let grad = try #require(v.grad, "\(golden) \(scope): \(name) got no gradient")
            grads.append((name, try ctx.read(grad)))
        }
        var worst = 0.0
        for (name, err) in try g.errors(grads) {
            #expect(err <= Self.bound, "\(golden) --finetune \(scope): \(name) relative error \(err)")
            worst = max(worst, err)
        }
        if ProcessInfo.processInfo.environment["VKPROBE_PRINT_ERRORS"] != nil { print("\(golden) --finetune \(scope): \(grads.count) tensors, worst \(worst), forward \(forwardError)") }
        expectNoValidationMessages(ctx)
    }

    @Test func vitS16All() throws { try run("vits16", .all) }
    @Test func vitS16LastTwo() throws { try run("vits16", .lastBlocks(2)) }
    /// DINOv2: registers, LayerScale, no position rows for the prefix, and the 37×37 table
    /// resized to the input's 3×3 grid — its gradient goes back through the resize.
    @Test func dinov2RegAll() throws { try run("dinov2s14reg4", .all) }
    @Test func dinov2RegLastTwo() throws { try run("dinov2s14reg4", .lastBlocks(2)) }

    /// DINOv3: rotary q and k (half pairs) on a non-square grid, storage tokens, no position table.
    @Test func dinov3All() throws { try run("dinov3s16", .all) }
    @Test func dinov3LastOne() throws { try run("dinov3s16", .lastBlocks(1)) }
    /// EVA-02: separate q/k/v with k unbiased, SwiGLU and its sub-LN, interleaved rotary pairs.
    @Test func eva02BaseAll() throws { try run("eva02b14", .all) }
    /// EVA-02 tiny: the packed GluMlp.
    @Test func eva02TinyAll() throws { try run("eva02t14", .all) }
    /// AIMv2: RMSNorm (as LayerNorm of [x, −x]), the patch norm, no projection biases, SwiGLU.
    @Test func aimv2All() throws { try run("aimv2l14", .all) }
    /// BEiT v2: the scores plus each block's relative bias (the table's gradient through the
    /// one-hot map), q/v biases, `gamma_1`/`gamma_2`.
    @Test func beitv2All() throws { try run("beitv2b16", .all) }
    /// BEiT with one table for every block: trained with `.all`, an input the trained block reads
    /// but does not train with `--finetune 1`.
    @Test func beitSharedAll() throws { try run("beitshared", .all) }
    @Test func beitSharedLastOne() throws { try run("beitshared", .lastBlocks(1), checkpointed: true) }
    /// Hiera: the 7×7/4 embedding and the three unrolls, widening and 2×2-pooled stages,
    /// mask-unit attention with pooled queries; `--finetune 2` starts inside the third stage (the
    /// frozen part's stream in timm's unrolled order) and crosses the last pooling.
    @Test func hieraAll() throws { try run("hieratiny", .all) }
    @Test func hieraLastTwo() throws { try run("hieratiny", .lastBlocks(2), checkpointed: true) }
    /// EVA-02-CLIP E/14: post-norm blocks, q/v biases on a fused qkv, the attention's inner norm.
    @Test func eva02ClipPostNormAll() throws { try run("eva02e14", .all) }
    @Test func eva02ClipPostNormLastOne() throws { try run("eva02e14", .lastBlocks(1), checkpointed: true) }

    /// --grad-checkpoint: the blocks replayed in the backward give the golden's gradients too.
    @Test func dinov2RegAllCheckpointed() throws { try run("dinov2s14reg4", .all, checkpointed: true) }

    /// Checkpointing recomputes the same values (identical gradients, bit for bit) and keeps less.
    /// Width 64, 16 trained blocks, 8 images of 65 tokens: the plain tape holds every block's
    /// activations (measured ~6 MB a block as the allocator counts them: LN outputs, q/k/v,
    /// the MLP's 256-wide hidden, their gradients' temporaries), the checkpointed step only the
    /// blocks' inputs (0.13 MB each) plus a constant window — the stream's submissions in flight
    /// and one block replayed (~40 MB here). Measured 110 MB against 48 MB; the bound, 0.6, fails
    /// if the activations stay alive (at depth 8 the two are 62 and 44 MB: the window dominates).
    @Test func checkpointingKeepsLessAndChangesNothing() throws {
        let c = try ViTConfig.fromTimmArguments(#"{"patch_size": 8, "embed_dim": 64, "depth": 16, "num_heads": 4, "img_size": 64, "init_values": 0.5}"#)
        let weights = ViTWeights.random(c, seed: 3)
        let ctx = try makeContext()
        let gpu = GPUBackend(ctx)
        let vit = try VisionTransformer(weights: weights, ctx: ctx, precision: .fp32)
        var rng = SystemRandomNumberGenerator()
        let pixels = (0..<(8 * 3 * 64 * 64)).map { _ in Float.random(in: -2...2, using: &rng) }
        let input = try vit.patchRows(try ctx.tensor(pixels, [8, 3, 64, 64]))
        let upstream = try ctx.tensor((0..<(8 * 65 * 64)).map { _ in Float.random(in: -1...1, using: &rng) }, [8, 65, 64])
        func step(_ checkpointed: Bool) throws -> (grads: [String: [Float]], extra: Int) {
            let trained = try TrainableViT(weights: weights, scope: .all, appliesNorm: true, backend: gpu)
            trained.checkpointBlocks = checkpointed
            try ctx.finish()
            let memory = try #require(ctx.device.memory)
            memory.resetPeak()
            let base = memory.usedBytes
            var grads: [String: [Float]] = [:]
            do {
                let g = Graph(gpu, training: true)
                let (tokens, params) = try trained.forward(g, input: input, gridH: 8, gridW: 8, train: true)
                try g.backward(tokens, grad: upstream)
                for (n, v) in params { grads[n] = try ctx.read(try #require(v.grad)) }
            }
            try ctx.finish()
            return (grads, memory.peakUsedBytes - base)
        }
        let plain = try step(false), kept = try step(true)
        for (n, g) in plain.grads { #expect(kept.grads[n] == g, "\(n) differs under checkpointing") }
        #expect(Double(kept.extra) < 0.6 * Double(plain.extra), "checkpointed step's extra memory \(kept.extra) vs \(plain.extra)")
        if ProcessInfo.processInfo.environment["VKPROBE_PRINT_ERRORS"] != nil { print("extra memory of a step: plain \(plain.extra), checkpointed \(kept.extra)") }
        expectNoValidationMessages(ctx)
    }

    /// The rotary op's backward (the inverse rotation) against finite differences of its forward,
    /// in Double, both pairings; and the device op against the Double one (the input untouched).
    @Test(arguments: [false, true]) func ropeGradient(_ half: Bool) throws {
        let cpu = CPUBackend()
        let (Bn, T, H, hd) = (2, 3, 2, 8)
        let angles = randomValues(T * hd, seed: 7, lo: -3, hi: 3)
        let cosT = try cpu.constant(angles.map { Float(Foundation.cos($0)) }, [T, hd]), sinT = try cpu.constant(angles.map { Float(Foundation.sin($0)) }, [T, hd])
        let x0 = randomValues(Bn * T * H * hd, seed: 8), w = randomValues(x0.count, seed: 9)
        let g = Graph(cpu, training: true)
        let x = g.input(HostTensor(x0, [Bn, T, H, hd]), requiresGrad: true)
        let y = try g.rope(x, cos: cosT, sin: sinT, half: half)
        try g.backward(y, grad: HostTensor(w, [Bn, T, H, hd]))
        let fd = finiteDifference(x0) { v in dot(try! cpu.rope(HostTensor(v, [Bn, T, H, hd]), cos: cosT, sin: sinT, half: half, inverse: false).data, w) }
        // Central differences (h = 1e-6) of a linear Double function of size O(10): rounding
        // ε·|f|/h ≈ 1e-9 an entry, truncation none; 1e-6 as the other finite-difference checks.
        // The forward rotation used as its own backward is off by O(1).
        #expect(relativeError(x.grad!.data, fd) <= 1e-6, "half \(half)")
        // The device op, forward and inverse, on a (B, T, H, hd) view of a wider tensor.
        let ctx = try makeContext()
        let gpu = GPUBackend(ctx)
        let xs = x0.map(Float.init)
        let dev = try ctx.tensor(xs, [Bn, T, H, hd])
        for inverse in [false, true] {
            let got = try ctx.read(try gpu.rope(dev, cos: try ctx.tensor(try cpu.toHost(cosT), [T, hd]), sin: try ctx.tensor(try cpu.toHost(sinT), [T, hd]), half: half, inverse: inverse))
            let want = try cpu.rope(HostTensor(x0, [Bn, T, H, hd]), cos: cosT, sin: sinT, half: half, inverse: inverse).data
            #expect(relativeError(got, want) <= 1e-6, "device rope half \(half) inverse \(inverse)")
        }
        #expect(try ctx.read(dev) == xs, "the device rope changed its input")
        expectNoValidationMessages(ctx)
    }

    @Test func everyFamilyIsAcceptedAndScopesParse() throws {
        for model in ["vit_small_patch14_reg4_dinov2", "vit_base_patch16_dinov3", "eva02_base_patch14_224", "vit_pe_core_base_patch16_224",
                      "vit_base_patch16_siglip_224", "vit_base_patch16_clip_224", "aimv2_large_patch14_224", "beitv2_base_patch16_224", "hiera_base_224"] {
            try TrainableViT<GPUBackend>.check(try ViTRegistry.config(model))
        }
        #expect(throws: BackboneError.self) { try FineTuneScope.parse("13", depth: 12) }
        #expect(try FineTuneScope.parse("all", depth: 12) == .all)
        #expect(try FineTuneScope.parse("2", depth: 12).firstBlock(depth: 12) == 10)
    }
}
