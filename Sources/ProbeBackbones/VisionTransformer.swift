import Foundation
import ProbeKernels
import VulkanCompute

/// Storage of weights and activations in the frozen forward. Accumulation is f32 either way, and
/// the residual stream (the tokens every block adds to) stays f32.
public enum Precision: String, Sendable, CaseIterable, Codable {
    case fp32, fp16

    /// The storage a device gets unless asked otherwise: fp16 on GPUs with 16-bit storage (half
    /// the bytes moved), fp32 on CPU devices, where fp16 storage only adds a conversion to every
    /// load and store (lavapipe, ViT-S/16 at batch 8: 1260 ms fp32 against 1350 fp16;
    /// docs/PERFORMANCE-HISTORY.md).
    public static func standard(for caps: DeviceCapabilities) -> Precision {
        caps.storageBuffer16BitAccess && !caps.isCPU ? .fp16 : .fp32
    }
}

/// Where a token set is taken: after block i (from 0), or after the final norm.
public enum TokenTap: Hashable, Sendable, CustomStringConvertible {
    case block(Int)
    case norm
    public var description: String { switch self { case let .block(i): return "block\(i)"; case .norm: return "norm" } }

    /// Parses `--blocks` entries: `-1` (the last block), `-4`, `11` (from 0), `norm`.
    public static func parse(_ text: String, depth: Int) throws -> TokenTap {
        if text == "norm" { return .norm }
        guard let i = Int(text), (-depth..<depth).contains(i) else {
            throw BackboneError("--blocks \(text): expected a block index in \(-depth)…\(depth - 1) (negative counts from the last) or `norm`")
        }
        return .block(i < 0 ? depth + i : i)
    }
}

/// The positions of a ViT's output tokens: [CLS?][registers?][patches row-major].
public struct TokenLayout: Codable, Sendable, Equatable {
    public var cls: Bool
    public var registers: Int
    public var gridH: Int
    public var gridW: Int
    public var patches: Int { gridH * gridW }
    public var prefix: Int { (cls ? 1 : 0) + registers }
    public var total: Int { prefix + patches }
}

/// A frozen timm VisionTransformer on the device, inference only: fused attention that never
/// stores the N×N probabilities, bias and activation fused into the GEMMs, each branch added to
/// the residual stream by its GEMM's epilogue (with LayerScale), and at most a few blocks' worth
/// of activations alive (the stream submits at every block and runs a bounded distance ahead).
public final class VisionTransformer {
    public let config: ViTConfig
    public let ctx: KernelContext
    public let precision: Precision
    /// A norm's parameters on the device (no bias for RMSNorm).
    struct Norm { let w: Tensor, b: Tensor? }
    /// One block in one layout whatever the family's names: q, k, v packed into one (3D, D)
    /// projection (k's bias zero where the family has none), a gated MLP's gate and value halves.
    struct Block {
        let norm1, norm2: Norm
        let qkvW: Tensor, qkvB: Tensor?
        let attnNorm: Norm?
        let projW: Tensor, projB: Tensor?
        /// `.mlp`: fc1; gated MLPs: the gate's projection.
        let fc1W: Tensor, fc1B: Tensor?
        /// Gated MLPs: the value's projection.
        let valueW: Tensor?, valueB: Tensor?
        let mlpNorm: Norm?
        let fc2W: Tensor, fc2B: Tensor?
        let ls1, ls2: Tensor?
        /// BEiT's ((2g−1)² + 3, H) relative position table (host).
        let relTable: [Float]?
    }
    let blocks: [Block]
    let patchW: Tensor, patchB: Tensor?
    let patchNorm: Norm?
    let prefixTokens: Tensor?   // (prefix, D): [CLS; registers]
    let normPre: Norm?
    let norm: Norm?
    public let weights: ViTWeights
    private var posEmbeds: [[Int]: Tensor] = [:]
    private var ropeTables: [[Int]: (Tensor, Tensor)] = [:]
    private var relBiases: [[Int]: [Tensor]] = [:]
    /// The pretrained pooled head on the final norm (CLIP's projection, SigLIP's MAP), f32.
    public var pooledHead: ViTWeights.PooledHead? { weights.pooledHead }
    public var pooledWidth: Int { weights.pooledWidth }
    private var pooledTensors: [String: Tensor] = [:]

    /// Bytes of the weights on the device.
    public let weightBytes: Int

    /// A Hiera runs its own blocks (see `HieraForward`).
    let hiera: HieraForward?

    public init(weights: ViTWeights, ctx: KernelContext, precision: Precision) throws {
        let c = weights.config
        self.config = c; self.ctx = ctx; self.precision = precision; self.weights = weights
        if precision == .fp16 && !ctx.device.capabilities.storageBuffer16BitAccess {
            throw BackboneError("--precision fp16 needs 16-bit storage buffers, which \(ctx.device.name) lacks; use --precision fp32")
        }
        if c.hiera != nil {
            let h = try HieraForward(weights, ctx: ctx, precision: precision)
            hiera = h; weightBytes = h.bytes
            blocks = []; patchNorm = nil; prefixTokens = nil; normPre = nil; self.norm = nil
            let dummy = try ctx.empty([1])
            patchW = dummy; patchB = nil
            return
        }
        hiera = nil
        var bytes = 0
        func f32(_ name: String) throws -> Tensor {
            let t = try ctx.tensor(weights[name], [weights[name].count]); bytes += t.count * 4; return t
        }
        // GEMM operands in the working precision (f16 halves the weights' memory and traffic).
        func gemmWeight(_ v: [Float], _ shape: [Int]) throws -> Tensor {
            let t = precision == .fp16 ? try ctx.tensorF16(v, shape) : try ctx.tensor(v, shape)
            bytes += t.count * t.dtype.size
            return t
        }
        func gemmWeight(_ name: String, _ shape: [Int]) throws -> Tensor { try gemmWeight(weights[name], shape) }
        func f32(_ v: [Float]) throws -> Tensor { let t = try ctx.tensor(v, [v.count]); bytes += t.count * 4; return t }
        func norm(_ name: String) throws -> Norm { Norm(w: try f32(name + ".weight"), b: c.normBias ? try f32(name + ".bias") : nil) }
        let (D, H) = (c.embedDim, c.mlpHidden)
        blocks = try (0..<c.depth).map { i in
            let b = "blocks.\(i)."
            let zeros = [Float](repeating: 0, count: D)
            // q, k, v as one (3D, D) projection; its bias in the working precision (qkv writes activations).
            var qkvW: [Float], qkvB: [Float]?
            switch c.qkvLayout {
            case .fused:
                qkvW = weights[b + "attn.qkv.weight"]; qkvB = c.qkvBias ? weights[b + "attn.qkv.bias"] : nil
            case .fusedQV:
                qkvW = weights[b + "attn.qkv.weight"]; qkvB = c.qkvBias ? weights[b + "attn.q_bias"] + zeros + weights[b + "attn.v_bias"] : nil
            case .separate:
                qkvW = weights[b + "attn.q_proj.weight"] + weights[b + "attn.k_proj.weight"] + weights[b + "attn.v_proj.weight"]
                qkvB = c.qkvBias ? weights[b + "attn.q_proj.bias"] + zeros + weights[b + "attn.v_proj.bias"] : nil
            }
            // Gated MLPs: gate and value (GluMlp packs gate first, then value, in one fc1).
            var fc1W: [Float], fc1B: [Float]?, valueW: [Float]?, valueB: [Float]?
            switch c.mlp {
            case .mlp:
                fc1W = weights[b + "mlp.fc1.weight"]; fc1B = weights[b + "mlp.fc1.bias"]
            case .glu:
                let w = weights[b + "mlp.fc1.weight"], bias = weights[b + "mlp.fc1.bias"]
                fc1W = Array(w[..<(H * D)]); valueW = Array(w[(H * D)...]); fc1B = Array(bias[..<H]); valueB = Array(bias[H...])
            case .swiglu:
                fc1W = weights[b + "mlp.fc1_g.weight"]; valueW = weights[b + "mlp.fc1_x.weight"]
                fc1B = c.projBias ? weights[b + "mlp.fc1_g.bias"] : nil; valueB = c.projBias ? weights[b + "mlp.fc1_x.bias"] : nil
            }
            // A gated MLP's two GEMMs write f32 (their product is taken in f32), so their biases are f32.
            let gated = c.mlp != .mlp
            func mlpBias(_ v: [Float]?) throws -> Tensor? { try v.map { gated ? try f32($0) : try gemmWeight($0, [$0.count]) } }
            let (g1, g2) = c.layerScaleNames == .ls ? ("ls1.gamma", "ls2.gamma") : ("gamma_1", "gamma_2")
            return Block(norm1: try norm(b + "norm1"), norm2: try norm(b + "norm2"),
                         qkvW: try gemmWeight(qkvW, [3 * D, D]), qkvB: try qkvB.map { try gemmWeight($0, [3 * D]) },
                         attnNorm: c.attnNorm ? try norm(b + "attn.norm") : nil,
                         projW: try gemmWeight(b + "attn.proj.weight", [D, D]), projB: c.projBias ? try f32(b + "attn.proj.bias") : nil,
                         fc1W: try gemmWeight(fc1W, [H, D]), fc1B: try mlpBias(fc1B),
                         valueW: try valueW.map { try gemmWeight($0, [H, D]) }, valueB: try mlpBias(valueB),
                         mlpNorm: c.mlpNorm ? try norm(b + "mlp.norm") : nil,
                         fc2W: try gemmWeight(b + "mlp.fc2.weight", [D, H]), fc2B: c.projBias ? try f32(b + "mlp.fc2.bias") : nil,
                         ls1: c.layerScale ? try f32(b + g1) : nil, ls2: c.layerScale ? try f32(b + g2) : nil,
                         relTable: !c.relPosBias ? nil : weights[c.sharedRelPosBias ? "rel_pos_bias.relative_position_bias_table" : b + "attn.relative_position_bias_table"])
        }
        let p = c.patchSize
        patchW = try gemmWeight("patch_embed.proj.weight", [c.embedDim, 3 * p * p])
        patchB = c.patchBias ? try f32("patch_embed.proj.bias") : nil
        patchNorm = c.patchNorm ? try norm("patch_embed.norm") : nil
        var prefix: [Float] = []
        if c.classToken { prefix += weights["cls_token"] }
        if c.regTokens > 0 { prefix += weights["reg_token"] }
        prefixTokens = prefix.isEmpty ? nil : try ctx.tensor(prefix, [c.prefixTokens, c.embedDim])
        normPre = c.preNorm ? try norm("norm_pre") : nil
        self.norm = c.finalNorm ? try norm("norm") : nil
        if let kind = weights.pooledHead {
            for (name, shape) in ViTWeights.pooledShapes(c, kind, projection: weights.pooledWidth) {
                let t = try ctx.tensor(weights[name], shape)
                bytes += t.count * 4
                pooledTensors[name] = t
            }
        }
        weightBytes = bytes
    }

    /// Applies a norm (LayerNorm or RMSNorm by the family) to f32 rows, writing `out`'s dtype.
    func apply(_ n: Norm, _ x: Tensor, into out: Tensor) throws {
        if config.norm == .rms { try ctx.rmsNorm(x, gamma: n.w, eps: config.normEps, into: out) }
        else { _ = try ctx.layerNorm(x, gamma: n.w, beta: n.b, eps: config.normEps, into: out) }
    }

    /// The same, from rows in any storage (the norm kernels read f32).
    func applyAny(_ n: Norm, _ x: Tensor, into out: Tensor) throws {
        if x.dtype == .f32 { try apply(n, x, into: out); return }
        let wide = try ctx.empty(x.shape)
        try ctx.copy(x, into: wide)
        try apply(n, wide, into: out)
    }

    /// The pooled head's output from the final norm's tokens (B, T, D) f32: CLIP's projected
    /// [CLS], `head(norm(x)[:, 0])` (B, P), or SigLIP's attention pool (B, D) — timm's
    /// `AttentionPoolLatent`: a learnt query attends over every token (multi-head, the model's
    /// heads), `proj`, then x + MLP(LayerNorm(x)). This is what upstream's `cls` reads for these
    /// families. In f32 whatever the backbone's storage (one row per image).
    public func pooled(_ normed: Tensor) throws -> Tensor? {
        guard let kind = pooledHead else { return nil }
        let c = config, D = c.embedDim, B = normed.shape[0], T = normed.shape[1]
        func w(_ n: String) -> Tensor { pooledTensors[n]! }
        switch kind {
        case .projection:
            let first = try ctx.contiguous(try normed.slice(axis: 1, 0..<1).squeezed(1))
            return try ctx.matmul(first, w("head.weight"), transB: true, bias: w("head.bias"))
        case .map, .mapProjection:
            let heads = c.attnPoolHeads ?? c.numHeads, hd = D / heads
            let q1 = try ctx.matmul(try w("attn_pool.latent").reshaped([1, D]), w("attn_pool.q.weight"), transB: true, bias: w("attn_pool.q.bias"))
            let q = try ctx.empty([B, 1, D])
            try ctx.copy(Tensor(buffer: q1.buffer, offset: q1.offset, shape: [B, 1, D], strides: [0, D, 1], dtype: .f32), into: q)
            let kv = try ctx.matmul(try ctx.contiguous(normed).reshaped([B * T, D]), w("attn_pool.kv.weight"), transB: true, bias: w("attn_pool.kv.bias"))
            let packed = try kv.reshaped([B, T, 2, heads, hd])
            func part(_ j: Int) throws -> Tensor { try packed.slice(axis: 2, j..<(j + 1)).squeezed(2).permuted([0, 2, 1, 3]) }
            let o = try ctx.empty([B, 1, heads, hd])
            try ctx.attention(q: try q.reshaped([B, 1, heads, hd]).permuted([0, 2, 1, 3]), k: try part(0), v: try part(1),
                              scale: 1 / Float(hd).squareRoot(), into: try o.permuted([0, 2, 1, 3]))
            let x = try ctx.matmul(try o.reshaped([B, D]), w("attn_pool.proj.weight"), transB: true, bias: w("attn_pool.proj.bias"))
            let h = try ctx.layerNorm(x, gamma: w("attn_pool.norm.weight"), beta: w("attn_pool.norm.bias"), eps: c.normEps).y
            let m = try ctx.matmul(h, w("attn_pool.mlp.fc1.weight"), transB: true, bias: w("attn_pool.mlp.fc1.bias"), activation: c.activation)
            try ctx.gemm(m, w("attn_pool.mlp.fc2.weight"), into: x, transB: true, bias: w("attn_pool.mlp.fc2.bias"), residual: true)
            return kind == .map ? x : try ctx.matmul(x, w("head.weight"), transB: true, bias: w("head.bias"))
        }
    }

    /// `--tokens projected`: the final norm's tokens go through CLIP's projection (`head.*`), as
    /// upstream's `NAME_all` feeds open_clip's CLIP towers — the projected [CLS] (`cls`) followed by
    /// the patch tokens projected into the same space.
    public var projectTokens = false

    /// The final norm's tokens (B, T, D) f32 through the projection: (B, T, P) f32.
    public func projected(_ normed: Tensor) throws -> Tensor {
        guard pooledHead == .projection else {
            throw BackboneError("--tokens projected: the backbone has no CLIP projection (`head.*` of a CLIP tower) to project its tokens with")
        }
        let B = normed.shape[0], T = normed.shape[1], D = config.embedDim
        let p = try ctx.matmul(try ctx.contiguous(normed).reshaped([B * T, D]), pooledTensors["head.weight"]!, transB: true, bias: pooledTensors["head.bias"]!)
        return try p.reshaped([B, T, pooledWidth])
    }

    /// The first block whose output a token set can hold (Hiera: its last stage; else 0).
    public var firstTappableBlock: Int { hiera?.firstFinalBlock ?? 0 }

    /// The token layout for images of H × W pixels.
    public func layout(height: Int, width: Int) -> TokenLayout {
        TokenLayout(cls: config.classToken, registers: config.regTokens, gridH: height / config.patchSize, gridW: width / config.patchSize)
    }

    /// The position embedding for a grid, resized once per grid and kept (zeros where the family
    /// has no absolute table).
    func positionEmbedding(_ gh: Int, _ gw: Int) throws -> Tensor {
        if let t = posEmbeds[[gh, gw]] { return t }
        let D = config.embedDim
        let v = config.absPosEmbed ? weights.positionEmbedding(gridH: gh, gridW: gw)
            : [Float](repeating: 0, count: (gh * gw + (config.noEmbedClass ? 0 : config.prefixTokens)) * D)
        let t = try ctx.tensor(v, [v.count / D, D])
        posEmbeds[[gh, gw]] = t
        return t
    }

    /// The rotary tables (P, hd) for a grid, computed once per grid.
    func rotaryTables(_ spec: RoPESpec, _ gh: Int, _ gw: Int) throws -> (Tensor, Tensor) {
        if let t = ropeTables[[gh, gw]] { return t }
        let hd = config.headDim
        let (cosT, sinT) = RotaryTables.tables(spec, headDim: hd, gridH: gh, gridW: gw)
        let t = (try ctx.tensor(cosT, [gh * gw, hd]), try ctx.tensor(sinT, [gh * gw, hd]))
        ropeTables[[gh, gw]] = t
        return t
    }

    /// BEiT's (H, N, N) score biases of every block for a grid. timm builds the index for the
    /// model's own window; another grid would need its tables resized (timm does that when it
    /// creates the model at another size), which is not done here: refused.
    func relativeBiases(_ gh: Int, _ gw: Int) throws -> [Tensor] {
        if let t = relBiases[[gh, gw]] { return t }
        let g = config.posEmbedGrid
        guard gh == g, gw == g else {
            throw BackboneError("BEiT's relative position tables are for a \(g)×\(g) patch grid (\(config.imgSize) px); the input gives \(gh)×\(gw): use --input-size \(config.imgSize)")
        }
        let n = g * g + 1
        func bias(_ table: [Float]) throws -> Tensor { try ctx.tensor(RelativePositionBias.bias(table: table, heads: config.numHeads, grid: g), [config.numHeads, n, n]) }
        let t = config.sharedRelPosBias ? Array(repeating: try bias(blocks[0].relTable!), count: blocks.count) : try blocks.map { try bias($0.relTable!) }
        relBiases[[gh, gw]] = t
        return t
    }

    /// Runs the frozen forward on `images` (B, 3, H, W) f32, normalised, and returns the token
    /// sets asked for, each (B, T, D) f32 in `layout(height:width:)` order (`.norm`: what timm's
    /// `forward_features` returns — the last block's output where the family has no final norm).
    /// Recorded into the context's stream; reading a result finishes it.
    ///
    /// `noise`: one forward's draws of upstream's train-mode randomness (`TrainModeNoise`: drop
    /// path, DINOv3's RoPE rescale); nil runs the backbone in eval mode.
    public func forward(_ images: Tensor, taps: Set<TokenTap>, noise: TrainModeNoise.Draw? = nil) throws -> [TokenTap: Tensor] {
        let c = config, D = c.embedDim, p = c.patchSize
        guard images.rank == 4, images.shape[1] == 3, images.dtype == .f32 else {
            throw BackboneError("images \(images): expected (B, 3, H, W) f32")
        }
        for t in taps { if case let .block(i) = t, !(0..<c.depth).contains(i) { throw BackboneError("block \(i) of a \(c.depth)-block model") } }
        if let hiera { return try hiera.forward(images, taps: taps) }
        if taps.contains(.norm), let damage = weights.damagedFinalNorm {
            throw BackboneError("\(weights.path): the final norm cannot be used: \(damage); tap a block instead (--blocks -1, the last block before the norm, as upstream probes plain ViTs)")
        }
        let (B, H, W) = (images.shape[0], images.shape[2], images.shape[3])
        guard H >= p, W >= p else { throw BackboneError("images of \(H)×\(W) px are smaller than one \(p)×\(p) patch") }
        for t in taps { if case let .block(i) = t, !(0..<c.depth).contains(i) { throw BackboneError("block \(i) of a \(c.depth)-block model") } }
        let lay = layout(height: H, width: W)
        let (gh, gw, P, T, prefix) = (lay.gridH, lay.gridW, lay.patches, lay.total, lay.prefix)
        let act: DType = precision == .fp16 ? .f16 : .f32
        let img = try ctx.contiguous(images)
        let relBias = c.relPosBias ? try relativeBiases(gh, gw) : nil
        let rope = try c.rope.map { try rotaryTables($0, gh, gw) }

        let patches = try im2col(img, dtype: act)
        // The residual stream x (B, T, D) f32: prefix tokens and position embeddings first, then the
        // patch GEMM adds its output (residual epilogue).
        let x = try ctx.empty([B, T, D])
        let pos = try positionEmbedding(gh, gw)
        let patchRows = try patches.reshaped([B, P, 3 * p * p])
        if c.noEmbedClass || !c.absPosEmbed {
            if let pt = prefixTokens { try ctx.copy(try broadcast(pt, B), into: try x.slice(axis: 1, 0..<prefix)) }
        } else if let pt = prefixTokens {
            let first = try ctx.binary(pt, try pos.slice(axis: 0, 0..<prefix), .add)
            try ctx.copy(try broadcast(first, B), into: try x.slice(axis: 1, 0..<prefix))
        }
        let patchPos = try pos.slice(axis: 0, (pos.shape[0] - P)..<pos.shape[0])
        if let pn = patchNorm {
            // AIMv2: the patch projection is normalised before the positions are added.
            let e = try ctx.empty([B * P, D])
            try ctx.gemm(try patchRows.reshaped([B * P, 3 * p * p]), patchW, into: e, transB: true, bias: patchB)
            let en = try ctx.empty([B, P, D])
            try apply(pn, e, into: try en.reshaped([B * P, D]))
            try ctx.copy(try ctx.binary(en, patchPos, .add), into: try x.slice(axis: 1, prefix..<T))
        } else {
            try ctx.copy(try broadcast(patchPos, B), into: try x.slice(axis: 1, prefix..<T))
            try ctx.gemm(patchRows, patchW, into: try x.slice(axis: 1, prefix..<T), transB: true, bias: patchB, residual: true)
        }
        var stream = x
        if let n = normPre {
            stream = try ctx.empty([B, T, D])
            try apply(n, try x.reshaped([B * T, D]), into: try stream.reshaped([B * T, D]))
        }
        var out: [TokenTap: Tensor] = [:]
        let rows = B * T
        let flat = try stream.reshaped([rows, D])
        // A residual branch: GEMM'd into the stream by its epilogue, or (train-mode drop path) into
        // a branch of its own, scaled per sample (0 or 1/(1 − p)) and added.
        func residual(_ a: Tensor, _ w: Tensor, bias: Tensor?, scale: Tensor?, perSample: [Float]?) throws {
            guard let perSample else {
                try ctx.gemm(a, w, into: flat, transB: true, bias: bias, scale: scale, residual: true)
                return
            }
            let branch = try ctx.empty([rows, D])
            try ctx.gemm(a, w, into: branch, transB: true, bias: bias, scale: scale)
            let kept = try ctx.binary(try branch.reshaped([B, T, D]), try ctx.tensor(perSample, [B, 1, 1]), .multiply)
            try ctx.copy(try ctx.binary(stream, kept, .add), into: stream)
        }
        // Post-norm blocks add norm(branch) to the stream: branch in f32, normalised, added.
        func addNormed(_ branch: Tensor, _ n: Norm) throws {
            let normed = try ctx.empty([rows, D])
            try apply(n, branch, into: normed)
            try ctx.copy(try ctx.binary(flat, normed, .add), into: flat)
        }
        // Blocks after the last one asked for are not run.
        let last = taps.contains(.norm) ? c.depth - 1 : taps.compactMap { if case let .block(i) = $0 { return i } else { return nil } }.max() ?? -1
        for (i, blk) in blocks.enumerated() where i <= last {
            // Attention branch.
            let h = try ctx.empty([rows, D], dtype: act)
            if c.postNorm { try ctx.copy(flat, into: h) } else { try apply(blk.norm1, flat, into: h) }
            let qkv = try ctx.empty([rows, 3 * D], dtype: act)
            try ctx.gemm(h, blk.qkvW, into: qkv, transB: true, bias: blk.qkvB)
            let packed = try qkv.reshaped([B, T, 3, c.numHeads, c.headDim])
            var blockRope = rope
            if let spec = c.rope, let scale = noise?.ropeScale[i] {
                let (cosT, sinT) = RotaryTables.tables(spec, headDim: c.headDim, gridH: gh, gridW: gw, rescale: scale)
                blockRope = (try ctx.tensor(cosT, [gh * gw, c.headDim]), try ctx.tensor(sinT, [gh * gw, c.headDim]))
            }
            if let (cosT, sinT) = blockRope, let spec = c.rope {
                // Rotary embedding of q and k, patch tokens only (timm skips the prefix tokens).
                for j in 0..<2 {
                    let part = try packed.slice(axis: 1, prefix..<T).slice(axis: 2, j..<(j + 1)).squeezed(2)
                    try ctx.rope(part, cos: cosT, sin: sinT, pairing: spec.half ? .half : .interleaved)
                }
            }
            func part(_ j: Int) throws -> Tensor { try packed.slice(axis: 2, j..<(j + 1)).squeezed(2).permuted([0, 2, 1, 3]) }
            var o = try ctx.empty([B, T, c.numHeads, c.headDim], dtype: act)
            try ctx.attention(q: try part(0), k: try part(1), v: try part(2), scale: 1 / Float(c.headDim).squareRoot(),
                              into: try o.permuted([0, 2, 1, 3]), bias: relBias?[i])
            if let n = blk.attnNorm {
                let normed = try ctx.empty([B, T, c.numHeads, c.headDim], dtype: act)
                try applyAny(n, try o.reshaped([rows, D]), into: try normed.reshaped([rows, D]))
                o = normed
            }
            if c.postNorm {
                let branch = try ctx.empty([rows, D])
                try ctx.gemm(try o.reshaped([rows, D]), blk.projW, into: branch, transB: true, bias: blk.projB)
                try addNormed(branch, blk.norm1)
            } else {
                try residual(try o.reshaped([rows, D]), blk.projW, bias: blk.projB, scale: blk.ls1, perSample: noise?.branchFactors[i]?.attn)
            }
            // MLP branch.
            let h2 = try ctx.empty([rows, D], dtype: act)
            if c.postNorm { try ctx.copy(flat, into: h2) } else { try apply(blk.norm2, flat, into: h2) }
            var m: Tensor
            if let valueW = blk.valueW {
                // SiLU(gate) ⊙ value, in f32.
                let gate = try ctx.empty([rows, c.mlpHidden]), value = try ctx.empty([rows, c.mlpHidden])
                try ctx.gemm(h2, blk.fc1W, into: gate, transB: true, bias: blk.fc1B, activation: .silu)
                try ctx.gemm(h2, valueW, into: value, transB: true, bias: blk.valueB)
                let product = try ctx.binary(gate, value, .multiply)
                m = try ctx.empty([rows, c.mlpHidden], dtype: act)
                if let n = blk.mlpNorm { try apply(n, product, into: m) } else { try ctx.copy(product, into: m) }
            } else {
                m = try ctx.matmul(h2, blk.fc1W, transB: true, bias: blk.fc1B, activation: c.activation)
                if let n = blk.mlpNorm {
                    let normed = try ctx.empty([rows, c.mlpHidden], dtype: act)
                    try applyAny(n, m, into: normed)
                    m = normed
                }
            }
            if c.postNorm {
                let branch = try ctx.empty([rows, D])
                try ctx.gemm(m, blk.fc2W, into: branch, transB: true, bias: blk.fc2B)
                try addNormed(branch, blk.norm2)
            } else {
                try residual(m, blk.fc2W, bias: blk.fc2B, scale: blk.ls2, perSample: noise?.branchFactors[i]?.mlp)
            }
            if taps.contains(.block(i)) {
                let copy = try ctx.empty([B, T, D])
                try ctx.copy(stream, into: copy)
                out[.block(i)] = copy
            }
            // Let the device start on this block while the next is recorded.
            try ctx.stream.submit()
        }
        if taps.contains(.norm) {
            let y = try ctx.empty([B, T, D])
            if let n = norm { try apply(n, flat, into: try y.reshaped([rows, D])) } else { try ctx.copy(stream, into: y) }
            out[.norm] = y
        }
        return out
    }

    /// The patches of contiguous images (B, 3, H, W) f32 as im2col rows (B, gh, gw, 3, p, p) in
    /// `dtype`: the patch embedding is then one GEMM with timm's (D, 3, p, p) weight.
    func im2col(_ img: Tensor, dtype: DType) throws -> Tensor {
        let p = config.patchSize, (B, H, W) = (img.shape[0], img.shape[2], img.shape[3]), (gh, gw) = (H / p, W / p)
        let windows = Tensor(buffer: img.buffer, offset: img.offset, shape: [B, 3, gh, p, gw, p],
                             strides: [3 * H * W, H * W, p * W, W, p, 1], dtype: .f32)
        let patches = try ctx.empty([B, gh, gw, 3, p, p], dtype: dtype)
        try ctx.copy(try windows.permuted([0, 2, 4, 1, 3, 5]), into: patches)
        return patches
    }

    /// What a fine-tuned part starting at block `first` reads (`TrainableViT.forward`'s input):
    /// the images' patches as im2col rows when the embeddings train too (`embeddings`), else
    /// the residual stream after block `first − 1`, run forward only here (f32).
    public func fineTuneInput(_ images: Tensor, firstBlock first: Int, embeddings: Bool) throws -> Tensor {
        if let hiera {
            return embeddings ? try hiera.im2col(try ctx.contiguous(images), dtype: .f32) : try hiera.stream(images, through: first - 1)
        }
        return embeddings ? try patchRows(images) : try forward(images, taps: [.block(first - 1)])[.block(first - 1)]!
    }

    /// The patches of `images` (B, 3, H, W) as (B, gh·gw, 3·p·p) f32 rows: the input of a
    /// fine-tuned patch embedding (`TrainableViT` with `.all`).
    public func patchRows(_ images: Tensor) throws -> Tensor {
        guard images.rank == 4, images.shape[1] == 3, images.dtype == .f32, images.shape[2] >= config.patchSize, images.shape[3] >= config.patchSize else {
            throw BackboneError("images \(images): expected (B, 3, H, W) f32 of at least one \(config.patchSize)-px patch")
        }
        let p = config.patchSize
        let rows = try im2col(try ctx.contiguous(images), dtype: .f32)
        return try rows.reshaped([images.shape[0], (images.shape[2] / p) * (images.shape[3] / p), 3 * p * p])
    }

    /// A (rows, D) tensor as a (B, rows, D) view repeating it (stride 0).
    func broadcast(_ t: Tensor, _ b: Int) throws -> Tensor {
        Tensor(buffer: t.buffer, offset: t.offset, shape: [b] + t.shape, strides: [0] + t.strides, dtype: t.dtype)
    }
}
