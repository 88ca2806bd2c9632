import Foundation
import ProbeAutodiff
import ProbeOps

/// What a fine-tuning run trains (`--finetune all|K`, upstream's `--finetuning` = `all`).
public enum FineTuneScope: Equatable, Sendable, Codable, CustomStringConvertible {
    /// The patch embedding, [CLS], registers, position embedding, every block and the final norm.
    case all
    /// The last K blocks and the final norm; the blocks before run forward only.
    case lastBlocks(Int)

    public var description: String { switch self { case .all: return "all"; case let .lastBlocks(k): return "\(k)" } }

    /// `all`, or K in 1…depth (K = depth trains every block but not the embeddings).
    public static func parse(_ text: String, depth: Int) throws -> FineTuneScope {
        if text == "all" { return .all }
        guard let k = Int(text), (1...depth).contains(k) else {
            throw BackboneError("--finetune \(text): expected `all` or a number of last blocks in 1…\(depth)")
        }
        return .lastBlocks(k)
    }

    /// The first trained block of a `depth`-block model.
    public func firstBlock(depth: Int) -> Int { switch self { case .all: return 0; case let .lastBlocks(k): return depth - k } }
    public var trainsEmbeddings: Bool { self == .all }
}

/// The trained part of a fine-tuned ViT, recorded on an autodiff tape: the same arithmetic as
/// `VisionTransformer.forward` (timm's `VisionTransformer` blocks), built from ops that each have
/// a backward, so every trained tensor gets its gradient. Generic over the backend: the device
/// trains with it; the Double reference runs the same definition.
///
/// Families: every one `VisionTransformer` runs — LayerNorm or RMSNorm (AIMv2, with its patch
/// norm and unbiased projections); fused, q/v-biased or separate q/k/v; rotary q and k (EVA-02,
/// DINOv3, PE); BEiT's relative biases (per block or shared); GELU-family, SwiGLU and packed-GLU
/// MLPs; sub-norms (EVA's); post-norm blocks; LayerScale under either name; [CLS], registers, a
/// learnt position table resized to the input's grid (or none), CLIP's pre-norm, the final norm;
/// and Hiera's stages (`hieraForward`).
public final class TrainableViT<B: Backend> {
    public let config: ViTConfig
    public let scope: FineTuneScope
    public let firstBlock: Int
    /// Whether the final norm is applied (and trained): the run probes `forward_features`.
    public let appliesNorm: Bool
    /// The trained tensors in timm's names and shapes, in a fixed order.
    public let specs: [(name: String, shape: [Int])]
    public var values: [String: B.Value]
    public let backend: B
    /// `--grad-checkpoint`: keep only each trained block's input and recompute its activations in
    /// the backward (one block's activations alive at a time instead of every trained block's).
    public var checkpointBlocks = false
    /// Host resize matrices of the position table, and rotary tables, per grid.
    private var resizes: [[Int]: B.Value] = [:]
    private var ropeTables: [[Int]: (B.Value, B.Value)] = [:]
    /// BEiT: the one-hot map from the relative table's rows to the (N·N) score positions, (R, N·N);
    /// the shared table where it is frozen (`--finetune K` of a shared-table checkpoint).
    private var relativeIndex: B.Value?
    private let frozenSharedTable: B.Value?

    /// Refuses a configuration the forward could not run (every family's backward is here).
    public static func check(_ c: ViTConfig) throws {
        // Every family the frozen forward runs has its backward here.
        try c.validate("fine-tuning")
    }

    /// The tensors `scope` trains, in timm's names: the embeddings (with `.all`), every tensor of
    /// the trained blocks, the final norm when the heads read it.
    public static func trainedNames(_ c: ViTConfig, scope: FineTuneScope, appliesNorm: Bool) -> [String] {
        let all = ViTWeights.expectedShapes(c).keys
        let first = scope.firstBlock(depth: c.depth)
        var names = scope.trainsEmbeddings ? all.filter { !$0.hasPrefix("blocks.") && !$0.hasPrefix("norm.") }.sorted() : []
        for i in first..<c.depth { names += all.filter { $0.hasPrefix("blocks.\(i).") }.sorted() }
        if appliesNorm && c.finalNorm { names += all.filter { $0.hasPrefix("norm.") }.sorted() }
        return names
    }

    public init(weights: ViTWeights, scope: FineTuneScope, appliesNorm: Bool, backend: B) throws {
        let c = weights.config
        try Self.check(c)
        config = c; self.scope = scope; self.appliesNorm = appliesNorm; self.backend = backend
        firstBlock = scope.firstBlock(depth: c.depth)
        let shapes = ViTWeights.expectedShapes(c)
        specs = Self.trainedNames(c, scope: scope, appliesNorm: appliesNorm).map { ($0, shapes[$0]!) }
        var v: [String: B.Value] = [:]
        for (name, shape) in specs { v[name] = try backend.constant(weights[name], shape) }
        values = v
        let shared = "rel_pos_bias.relative_position_bias_table"
        frozenSharedTable = c.relPosBias && c.sharedRelPosBias && v[shared] == nil ? try backend.constant(weights[shared], shapes[shared]!) : nil
    }

    /// The trained tensors' count.
    public var parameterCount: Int { specs.reduce(0) { $0 + $1.shape.reduce(1, *) } }

    /// `weights` with the trained tensors replaced by these (host copies): the whole model in
    /// timm's names, as `ViTWeights.write` saves it.
    public func merged(into weights: ViTWeights) throws -> ViTWeights {
        var t: [String: [Float]] = [:]
        for (name, _) in specs { t[name] = try backend.toHost(values[name]!) }
        return weights.replacing(t)
    }

    /// The position table's patch rows resized from the stored grid to gh × gw as a matrix
    /// (gh·gw, g²): the resize is linear in the table, so its backward is this matrix transposed.
    /// Built by resizing the identity (one channel per stored position).
    func resizeMatrix(_ gh: Int, _ gw: Int) throws -> B.Value {
        if let r = resizes[[gh, gw]] { return r }
        let g = config.posEmbedGrid, n = g * g
        let r = try backend.constant(PosEmbedResample.resize(Self.identity(n), h: g, w: g, dim: n, toH: gh, toW: gw, method: config.posEmbedResize), [gh * gw, n])
        resizes[[gh, gw]] = r
        return r
    }

    /// Records the trained part on `g`. `input`: with `.all`, the images' patches as im2col rows
    /// (B, gh·gw, 3·p·p) in timm's (channel, row, column) order; otherwise the residual stream
    /// after block `firstBlock − 1` (B, T, D). Returns the tokens (B, T, D) — after the final norm
    /// when `appliesNorm` — and the trained variables by name (gradients after `g.backward`);
    /// with `train` false the tensors enter as constants (no tape kept for them).
    public func forward(_ g: Graph<B>, input: B.Value, gridH gh: Int, gridW gw: Int, train: Bool) throws
        -> (tokens: Variable<B>, parameters: [(String, Variable<B>)]) {
        let c = config, D = c.embedDim
        var vars: [String: Variable<B>] = [:]
        for (name, _) in specs { vars[name] = train ? g.parameter(values[name]!, name: name) : g.constant(values[name]!) }
        func p(_ name: String) -> Variable<B> { vars[name]! }
        func opt(_ name: String) -> Variable<B>? { vars[name] }
        func layerNorm(_ x: Variable<B>, _ n: String) throws -> Variable<B> { try norm(g, x, weight: p(n + ".weight"), bias: opt(n + ".bias")) }
        if c.hiera != nil { return (try hieraForward(g, input: input, vars), specs.map { ($0.name, vars[$0.name]!) }) }
        let inShape = backend.shape(input)
        var x: Variable<B>
        if scope.trainsEmbeddings {
            let P = gh * gw, pp = 3 * c.patchSize * c.patchSize
            guard inShape.count == 3, inShape[1] == P, inShape[2] == pp else {
                throw BackboneError("fine-tuning input \(inShape): expected patches (B, \(P), \(pp))")
            }
            let B = inShape[0]
            let w = try g.reshape(p("patch_embed.proj.weight"), [D, pp])
            var e = try g.linear(g.input(input), w, opt("patch_embed.proj.bias"))   // (B, P, D)
            if c.patchNorm { e = try layerNorm(e, "patch_embed.norm") }   // AIMv2: before the positions
            let pos = c.absPosEmbed ? try g.reshape(p("pos_embed"), [c.posEmbedLength, D]) : nil
            let prefixRows = c.noEmbedClass || !c.absPosEmbed ? 0 : c.prefixTokens
            if let pos {
                var patchPos = try g.slice(pos, axis: 0, prefixRows..<c.posEmbedLength)
                let grid = c.posEmbedGrid
                if gh != grid || gw != grid { patchPos = try g.matmul(g.constant(try resizeMatrix(gh, gw)), patchPos) }
                e = try g.add(e, patchPos)
            }
            var prefix: [Variable<B>] = []
            if c.classToken { prefix.append(p("cls_token")) }
            if c.regTokens > 0 { prefix.append(p("reg_token")) }
            if prefix.isEmpty {
                x = e
            } else {
                var first = prefix.count == 1 ? prefix[0] : try g.concat(prefix, axis: 1)   // (1, prefix, D)
                if let pos, prefixRows > 0 { first = try g.add(first, try g.reshape(try g.slice(pos, axis: 0, 0..<prefixRows), [1, prefixRows, D])) }
                x = try g.concat([try g.expand(first, [B, c.prefixTokens, D]), e], axis: 1)
            }
            if c.preNorm { x = try layerNorm(x, "norm_pre") }
        } else {
            let T = c.prefixTokens + gh * gw
            guard inShape.count == 3, inShape[1] == T, inShape[2] == D else {
                throw BackboneError("fine-tuning input \(inShape): expected the tokens after block \(firstBlock - 1), (B, \(T), \(D))")
            }
            x = g.input(input)
        }
        let rope = try c.rope.map { try rotaryTables($0, gh, gw) }
        // BEiT's shared table is an input of every block (trained with `.all`).
        let shared: Variable<B>? = !(c.relPosBias && c.sharedRelPosBias) ? nil
            : vars["rel_pos_bias.relative_position_bias_table"] ?? g.constant(frozenSharedTable!)
        for i in firstBlock..<c.depth {
            let b = "blocks.\(i)."
            let names = blockNames(i)
            let params = names.map { vars[$0]! }
            if checkpointBlocks {
                // Only the block's input is kept; its activations come back in the backward.
                let extra = shared.map { [$0] } ?? []
                x = try g.checkpoint([x] + extra + params) { [unowned self] g, v in
                    try block(g, v[0], Dictionary(uniqueKeysWithValues: zip(names.map { String($0.dropFirst(b.count)) }, v.dropFirst(1 + extra.count))),
                              rope: rope, sharedTable: extra.isEmpty ? nil : v[1])
                }
            } else {
                x = try block(g, x, Dictionary(uniqueKeysWithValues: zip(names.map { String($0.dropFirst(b.count)) }, params)), rope: rope, sharedTable: shared)
            }
            x = try g.flushPoint(x)
        }
        if appliesNorm && c.finalNorm { x = try layerNorm(x, "norm") }
        return (x, specs.map { ($0.name, vars[$0.name]!) })
    }

    /// Block i's tensors, in timm's names.
    func blockNames(_ i: Int) -> [String] { specs.map(\.name).filter { $0.hasPrefix("blocks.\(i).") } }

    /// The family's norm over the last axis: LayerNorm, or RMSNorm — x / √(mean(x²) + ε) · w —
    /// written as the LayerNorm of [x, −x] (whose mean is 0 and variance mean(x²)) restricted to
    /// its first half, so that its backward is LayerNorm's.
    func norm(_ g: Graph<B>, _ x: Variable<B>, weight: Variable<B>, bias: Variable<B>?) throws -> Variable<B> {
        guard config.norm == .rms else { return try g.layerNorm(x, gamma: weight, beta: bias, eps: config.normEps) }
        let s = g.shape(x), axis = s.count - 1, d = s[axis]
        let mirrored = try g.concat([x, try g.scale(x, -1)], axis: axis)
        let normed = try g.slice(try g.layerNorm(mirrored, gamma: nil, beta: nil, eps: config.normEps), axis: axis, 0..<d)
        return try g.mul(normed, weight)
    }

    /// The n × n identity, row-major: a linear host map applied to it gives that map's matrix.
    static func identity(_ n: Int) -> [Float] {
        var m = [Float](repeating: 0, count: n * n)
        for i in 0..<n { m[i * n + i] = 1 }
        return m
    }

    /// BEiT's one-hot map (R, N·N) from table rows to score positions, for the model's own grid
    /// (as `VisionTransformer.relativeBiases`, other grids are refused): the bias of a table T is
    /// Tᵀ·map. Built by gathering the identity (each row its own "head").
    func relativeMap(tokens: Int) throws -> B.Value {
        let g = config.posEmbedGrid
        guard tokens == g * g + 1 else {
            throw BackboneError("BEiT's relative position tables are for a \(g)×\(g) patch grid (\(config.imgSize) px); the input gives \(tokens - 1) patches: use --input-size \(config.imgSize)")
        }
        if let m = relativeIndex { return m }
        let r = (2 * g - 1) * (2 * g - 1) + 3
        let m = try backend.constant(RelativePositionBias.bias(table: Self.identity(r), heads: r, grid: g), [r, tokens * tokens])
        relativeIndex = m
        return m
    }

    /// The rotary tables (P, hd) of a grid, per grid.
    func rotaryTables(_ spec: RoPESpec, _ gh: Int, _ gw: Int) throws -> (B.Value, B.Value) {
        if let t = ropeTables[[gh, gw]] { return t }
        let (cosT, sinT) = RotaryTables.tables(spec, headDim: config.headDim, gridH: gh, gridW: gw)
        let t = (try backend.constant(cosT, [gh * gw, config.headDim]), try backend.constant(sinT, [gh * gw, config.headDim]))
        ropeTables[[gh, gw]] = t
        return t
    }

    /// One block on (B, T, D), as `VisionTransformer.forward` runs it; `p` holds its tensors by
    /// name within the block (`norm1.weight`, `attn.q_proj.weight`, `gamma_1`…).
    func block(_ g: Graph<B>, _ input: Variable<B>, _ p: [String: Variable<B>], rope: (B.Value, B.Value)?, sharedTable: Variable<B>?) throws -> Variable<B> {
        let c = config, D = c.embedDim, H = c.numHeads, hd = c.headDim
        let s = g.shape(input), (Bn, T) = (s[0], s[1]), prefix = c.prefixTokens
        func norm(_ x: Variable<B>, _ n: String) throws -> Variable<B> { try self.norm(g, x, weight: p[n + ".weight"]!, bias: p[n + ".bias"]) }
        let (ls1, ls2) = c.layerScaleNames == .ls ? (p["ls1.gamma"], p["ls2.gamma"]) : (p["gamma_1"], p["gamma_2"])
        var x = input
        // Attention. q, k, v as (B, T, H, hd) whatever the layout (a packed qkv is viewed as
        // (B, T, 3, D): the backward's slices stay within 4 axes).
        let h = c.postNorm ? x : try norm(x, "norm1")
        var parts: [Variable<B>]
        switch c.qkvLayout {
        case .fused, .fusedQV:
            var bias = p["attn.qkv.bias"]
            if c.qkvLayout == .fusedQV, let qb = p["attn.q_bias"], let vb = p["attn.v_bias"] {
                bias = try g.concat([qb, g.constant(try backend.zeros([D])), vb], axis: 0)   // k has no bias
            }
            let qkv = try g.reshape(try g.linear(h, p["attn.qkv.weight"]!, bias), [Bn, T, 3, D])
            parts = try (0..<3).map { j in try g.reshape(try g.slice(qkv, axis: 2, j..<(j + 1)), [Bn, T, H, hd]) }
        case .separate:
            parts = try ["q", "k", "v"].map { n in try g.reshape(try g.linear(h, p["attn.\(n)_proj.weight"]!, p["attn.\(n)_proj.bias"]), [Bn, T, H, hd]) }
        }
        if let (cosT, sinT) = rope, let spec = c.rope {
            // q and k of the patch tokens rotated (timm skips the prefix tokens).
            for j in 0..<2 {
                let rotated = try g.rope(try g.slice(parts[j], axis: 1, prefix..<T), cos: cosT, sin: sinT, half: spec.half)
                parts[j] = prefix == 0 ? rotated : try g.concat([try g.slice(parts[j], axis: 1, 0..<prefix), rotated], axis: 1)
            }
        }
        let heads = try parts.map { try g.permute($0, [0, 2, 1, 3]) }
        let o: Variable<B>
        if c.relPosBias {
            // BEiT: the scores plus the relative bias, (H, N, N) gathered from the table as a
            // product with a one-hot map (so the table's gradient is that product's), softmax, PV.
            let table = try sharedTable ?? p["attn.relative_position_bias_table"].orThrow("the block's relative position table")
            let bias = try g.reshape(try g.matmul(table, g.constant(try relativeMap(tokens: T)), transA: true), [H, T, T])
            let scores = try g.add(try g.matmul(heads[0], heads[1], transB: true, alpha: 1 / Float(hd).squareRoot()), bias)
            o = try g.matmul(try g.softmax(scores), heads[2])
        } else {
            // The probabilities are recomputed in the backward, one block at a time.
            o = try g.attentionRecomputing(q: heads[0], k: heads[1], v: heads[2], scale: 1 / Float(hd).squareRoot())
        }
        var merged = try g.reshape(try g.permute(o, [0, 2, 1, 3]), [Bn, T, D])
        if c.attnNorm { merged = try norm(merged, "attn.norm") }
        var a = try g.linear(merged, p["attn.proj.weight"]!, p["attn.proj.bias"])
        if c.postNorm { a = try norm(a, "norm1") }
        if let ls1 { a = try g.mul(a, ls1) }
        x = try g.add(x, a)
        // MLP: GELU-family, or SiLU-gated (SwiGLU's two projections; GluMlp's one, gate first).
        let h2 = c.postNorm ? x : try norm(x, "norm2")
        var m: Variable<B>
        switch c.mlp {
        case .mlp:
            m = try g.activation(try g.linear(h2, p["mlp.fc1.weight"]!, p["mlp.fc1.bias"]), c.activation)
        case .swiglu:
            let gate = try g.activation(try g.linear(h2, p["mlp.fc1_g.weight"]!, p["mlp.fc1_g.bias"]), .silu)
            m = try g.mul(gate, try g.linear(h2, p["mlp.fc1_x.weight"]!, p["mlp.fc1_x.bias"]))
        case .glu:
            let both = try g.linear(h2, p["mlp.fc1.weight"]!, p["mlp.fc1.bias"])
            let hidden = c.mlpHidden
            m = try g.mul(try g.activation(try g.slice(both, axis: 2, 0..<hidden), .silu), try g.slice(both, axis: 2, hidden..<(2 * hidden)))
        }
        if c.mlpNorm { m = try norm(m, "mlp.norm") }
        var f = try g.linear(m, p["mlp.fc2.weight"]!, p["mlp.fc2.bias"])
        if c.postNorm { f = try norm(f, "norm2") }
        if let ls2 { f = try g.mul(f, ls2) }
        return try g.add(x, f)
    }
}


extension TrainableViT {
    /// Hiera (`HieraForward`'s arithmetic on the tape): the 7×7 stride-4 embedding as a GEMM over
    /// im2col rows plus the position table, the three unrolls (reshape-permute-reshape), then the
    /// blocks: widening projection and 2×2 max-pool of the residual, mask-unit or global attention
    /// with max-pooled queries, the MLP. The output is `forward_features` (tokens in image order).
    func hieraForward(_ g: Graph<B>, input: B.Value, _ vars: [String: Variable<B>]) throws -> Variable<B> {
        let c = config, spec = c.hiera!, plan = spec.plan
        var x: Variable<B>
        if scope.trainsEmbeddings {
            let s = backend.shape(input), c0 = spec.embedDim, kk = 3 * spec.patchKernel * spec.patchKernel
            guard s.count == 3, s[2] == kk else { throw BackboneError("fine-tuning input \(s): expected Hiera's im2col rows (B, N, \(kk))") }
            let (Bn, n0) = (s[0], s[1])
            var e = try g.linear(g.input(input), try g.reshape(vars["patch_embed.proj.weight"]!, [c0, kk]), vars["patch_embed.proj.bias"])
            e = try g.add(e, try g.reshape(vars["pos_embed"]!, [n0, c0]))
            // Unroll: each 2×2 stride offset moved in front of the halved grid, three times.
            let q = spec.qStride
            var (gh, gw, batches) = (c.imgSize / spec.patchStride, c.imgSize / spec.patchStride, Bn)
            for _ in 0..<min(spec.qPool, spec.stages.count - 1) {
                let (h2, w2) = (gh / q, gw / q)
                e = try g.reshape(try g.permute(try g.reshape(e, [batches, h2, q, w2, q, c0]), [0, 2, 4, 1, 3, 5]), [batches * q * q, h2 * w2, c0])
                batches *= q * q; gh = h2; gw = w2
            }
            x = try g.reshape(e, [Bn, n0, c0])
        } else {
            x = g.input(input)
        }
        for i in firstBlock..<c.depth {
            let prefix = "blocks.\(i)."
            let names = blockNames(i)
            let local = names.map { String($0.dropFirst(prefix.count)) }
            if checkpointBlocks {
                x = try g.checkpoint([x] + names.map { vars[$0]! }) { [unowned self] g, v in
                    try hieraBlock(g, v[0], plan[i], Dictionary(uniqueKeysWithValues: zip(local, v.dropFirst())))
                }
            } else {
                x = try hieraBlock(g, x, plan[i], Dictionary(uniqueKeysWithValues: zip(local, names.map { vars[$0]! })))
            }
            x = try g.flushPoint(x)
        }
        return x
    }

    /// One Hiera block on (B, N, dimIn) → (B, N / qStride, dimOut).
    func hieraBlock(_ g: Graph<B>, _ x: Variable<B>, _ p: HieraSpec.BlockPlan, _ w: [String: Variable<B>]) throws -> Variable<B> {
        let s = g.shape(x), (Bn, N) = (s[0], s[1])
        let D = p.dimOut, H = p.heads, hd = D / H, nq = N / p.qStride
        func maxPool(_ t: Variable<B>, _ groups: Int) throws -> Variable<B> {
            let ts = g.shape(t)
            return try g.amax(try g.reshape(t, [ts[0], groups, ts[1] / groups, ts[2]]), axis: 1)
        }
        let xn = try g.layerNorm(x, gamma: w["norm1.weight"], beta: w["norm1.bias"], eps: 1e-6)
        // The residual: x, or the normed tokens widened and max-pooled over each 2×2 group.
        var stream = x
        if let pw = w["proj.weight"] { stream = try maxPool(try g.linear(xn, pw, w["proj.bias"]), p.qStride) }
        // q, k, v (tokens l·nw + w: window w, position l) as (B, H, nw, L, hd), each from its
        // third of the packed projection.
        let nw = p.maskUnitAttn ? N / (p.qStride * p.window) : 1
        let L = N / nw, lq = L / p.qStride
        func part(_ j: Int) throws -> Variable<B> {
            let y = try g.linear(xn, try g.slice(w["attn.qkv.weight"]!, axis: 0, (j * D)..<((j + 1) * D)),
                                 try w["attn.qkv.bias"].map { try g.slice($0, axis: 0, (j * D)..<((j + 1) * D)) })
            return try g.permute(try g.reshape(y, [Bn, L, nw, H, hd]), [0, 3, 2, 1, 4])
        }
        // Query pooling: the max over the stride group, the outermost part of each window's positions.
        let qd = p.qStride > 1 ? try g.amax(try g.reshape(try part(0), [Bn * H * nw, p.qStride, lq * hd]), axis: 1) : try part(0)
        let o = try g.attentionRecomputing(q: try g.reshape(qd, [Bn, H * nw, lq, hd]), k: try g.reshape(try part(1), [Bn, H * nw, L, hd]),
                                           v: try g.reshape(try part(2), [Bn, H * nw, L, hd]), scale: 1 / Float(hd).squareRoot())
        let merged = try g.reshape(try g.permute(try g.reshape(o, [Bn, H, nw, lq, hd]), [0, 3, 2, 1, 4]), [Bn, nq, D])
        let y = try g.add(stream, try g.linear(merged, w["attn.proj.weight"]!, w["attn.proj.bias"]))
        let h2 = try g.layerNorm(y, gamma: w["norm2.weight"], beta: w["norm2.bias"], eps: 1e-6)
        let m = try g.activation(try g.linear(h2, w["mlp.fc1.weight"]!, w["mlp.fc1.bias"]), .gelu)
        return try g.add(y, try g.linear(m, w["mlp.fc2.weight"]!, w["mlp.fc2.bias"]))
    }
}

extension Optional {
    func orThrow(_ what: String) throws -> Wrapped {
        guard let v = self else { throw BackboneError("fine-tuning: \(what) is missing") }
        return v
    }
}
