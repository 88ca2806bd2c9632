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
/// Families: timm's plain ViT blocks — LayerNorm, fused qkv (with or without bias), GELU-family
/// MLP, LayerScale, [CLS], registers, a learnt absolute position table resized to the input's
/// grid, CLIP's pre-norm (AugReg, MAE, DeiT, DINO, DINOv2 with or without registers, CLIP, SigLIP,
/// the `_gap_` ViT). The others (rotary, relative bias, gated MLPs, sub-norms, post-norm, Hiera)
/// are refused by `check`, naming what is missing.
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
    /// Host resize matrices of the position table, per grid.
    private var resizes: [[Int]: B.Value] = [:]

    /// Refuses what the graph does not build, with the reason.
    public static func check(_ c: ViTConfig) throws {
        var missing: [String] = []
        if c.hiera != nil { missing.append("Hiera's stages") }
        if c.rope != nil { missing.append("rotary embeddings") }
        if c.relPosBias { missing.append("relative position biases") }
        if c.mlp != .mlp { missing.append("gated MLPs") }
        if c.mlpNorm || c.attnNorm { missing.append("sub-norms inside the blocks") }
        if c.postNorm { missing.append("post-norm blocks") }
        if c.patchNorm { missing.append("the patch norm") }
        if c.norm != .layer { missing.append("RMSNorm") }
        if c.qkvLayout != .fused { missing.append("separate q/k/v projections") }
        if !c.absPosEmbed { missing.append("a model without a learnt position table") }
        if !c.projBias { missing.append("unbiased projections") }
        if c.layerScale && c.layerScaleNames != .ls { missing.append("BEiT-style LayerScale") }
        if !missing.isEmpty {
            throw BackboneError("fine-tuning builds timm's plain ViT blocks (ViT, DeiT, MAE, DINO, DINOv2, CLIP, SigLIP); this model has \(missing.joined(separator: ", ")), which the backward does not cover yet: probe it frozen instead")
        }
    }

    /// The tensors `scope` trains, in timm's names.
    public static func trainedNames(_ c: ViTConfig, scope: FineTuneScope, appliesNorm: Bool) -> [String] {
        var names: [String] = []
        func norm(_ n: String) { names += [n + ".weight", n + ".bias"] }
        if scope.trainsEmbeddings {
            names.append("patch_embed.proj.weight")
            if c.patchBias { names.append("patch_embed.proj.bias") }
            if c.classToken { names.append("cls_token") }
            if c.regTokens > 0 { names.append("reg_token") }
            names.append("pos_embed")
            if c.preNorm { norm("norm_pre") }
        }
        for i in scope.firstBlock(depth: c.depth)..<c.depth {
            let b = "blocks.\(i)."
            norm(b + "norm1")
            names.append(b + "attn.qkv.weight")
            if c.qkvBias { names.append(b + "attn.qkv.bias") }
            names += [b + "attn.proj.weight", b + "attn.proj.bias"]
            if c.layerScale { names.append(b + "ls1.gamma") }
            norm(b + "norm2")
            names += [b + "mlp.fc1.weight", b + "mlp.fc1.bias", b + "mlp.fc2.weight", b + "mlp.fc2.bias"]
            if c.layerScale { names.append(b + "ls2.gamma") }
        }
        if appliesNorm && c.finalNorm { norm("norm") }
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
        var identity = [Float](repeating: 0, count: n * n)
        for i in 0..<n { identity[i * n + i] = 1 }
        let r = try backend.constant(PosEmbedResample.resize(identity, h: g, w: g, dim: n, toH: gh, toW: gw, method: config.posEmbedResize), [gh * gw, n])
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
        func layerNorm(_ x: Variable<B>, _ n: String) throws -> Variable<B> {
            try g.layerNorm(x, gamma: p(n + ".weight"), beta: p(n + ".bias"), eps: c.normEps)
        }
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
            let pos = try g.reshape(p("pos_embed"), [c.posEmbedLength, D])
            let prefixRows = c.noEmbedClass ? 0 : c.prefixTokens
            var patchPos = try g.slice(pos, axis: 0, prefixRows..<c.posEmbedLength)
            let grid = c.posEmbedGrid
            if gh != grid || gw != grid { patchPos = try g.matmul(g.constant(try resizeMatrix(gh, gw)), patchPos) }
            e = try g.add(e, patchPos)
            var prefix: [Variable<B>] = []
            if c.classToken { prefix.append(p("cls_token")) }
            if c.regTokens > 0 { prefix.append(p("reg_token")) }
            if prefix.isEmpty {
                x = e
            } else {
                var first = prefix.count == 1 ? prefix[0] : try g.concat(prefix, axis: 1)   // (1, prefix, D)
                if prefixRows > 0 { first = try g.add(first, try g.reshape(try g.slice(pos, axis: 0, 0..<prefixRows), [1, prefixRows, D])) }
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
        for i in firstBlock..<c.depth {
            let b = "blocks.\(i)."
            let names = blockNames(i)
            let params = names.map { vars[$0]! }
            if checkpointBlocks {
                // Only the block's input is kept; its activations come back in the backward.
                x = try g.checkpoint([x] + params) { [unowned self] g, v in
                    try block(g, v[0], Dictionary(uniqueKeysWithValues: zip(names.map { String($0.dropFirst(b.count)) }, v.dropFirst())))
                }
            } else {
                x = try block(g, x, Dictionary(uniqueKeysWithValues: zip(names.map { String($0.dropFirst(b.count)) }, params)))
            }
            x = try g.flushPoint(x)
        }
        if appliesNorm && c.finalNorm { x = try layerNorm(x, "norm") }
        return (x, specs.map { ($0.name, vars[$0.name]!) })
    }

    /// Block i's tensors, in timm's names.
    func blockNames(_ i: Int) -> [String] { specs.map(\.name).filter { $0.hasPrefix("blocks.\(i).") } }

    /// One pre-norm block on (B, T, D); `p` holds its tensors by name within the block (`norm1.weight`).
    func block(_ g: Graph<B>, _ input: Variable<B>, _ p: [String: Variable<B>]) throws -> Variable<B> {
        let c = config, D = c.embedDim, H = c.numHeads, hd = c.headDim
        let s = g.shape(input), (Bn, T) = (s[0], s[1])
        var x = input
        // Attention: qkv packed as (B, T, 3, D) (the backward's slices stay within 4 axes), each
        // part viewed as (B, H, T, hd); the probabilities are recomputed in the backward.
        let h = try g.layerNorm(x, gamma: p["norm1.weight"], beta: p["norm1.bias"], eps: c.normEps)
        let qkv = try g.reshape(try g.linear(h, p["attn.qkv.weight"]!, p["attn.qkv.bias"]), [Bn, T, 3, D])
        func part(_ j: Int) throws -> Variable<B> {
            try g.permute(try g.reshape(try g.slice(qkv, axis: 2, j..<(j + 1)), [Bn, T, H, hd]), [0, 2, 1, 3])
        }
        let o = try g.attentionRecomputing(q: try part(0), k: try part(1), v: try part(2), scale: 1 / Float(hd).squareRoot())
        var a = try g.linear(try g.reshape(try g.permute(o, [0, 2, 1, 3]), [Bn, T, D]), p["attn.proj.weight"]!, p["attn.proj.bias"])
        if let ls = p["ls1.gamma"] { a = try g.mul(a, ls) }
        x = try g.add(x, a)
        // MLP.
        let h2 = try g.layerNorm(x, gamma: p["norm2.weight"], beta: p["norm2.bias"], eps: c.normEps)
        let m = try g.activation(try g.linear(h2, p["mlp.fc1.weight"]!, p["mlp.fc1.bias"]), c.activation)
        var f = try g.linear(m, p["mlp.fc2.weight"]!, p["mlp.fc2.bias"])
        if let ls = p["ls2.gamma"] { f = try g.mul(f, ls) }
        return try g.add(x, f)
    }
}
