import Foundation
import ProbeKernels
import VulkanCompute

/// Storage of weights and activations in the frozen forward. Accumulation is f32 either way, and
/// the residual stream (the tokens every block adds to) stays f32.
public enum Precision: String, Sendable, CaseIterable, Codable {
    case fp32, fp16
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
    struct Block {
        let norm1w, norm1b, norm2w, norm2b: Tensor
        let qkvW: Tensor, qkvB: Tensor?
        let projW, projB: Tensor
        let fc1W, fc1B, fc2W, fc2B: Tensor
        let ls1, ls2: Tensor?
    }
    let blocks: [Block]
    let patchW: Tensor, patchB: Tensor?
    let prefixTokens: Tensor?   // (prefix, D): [CLS; registers]
    let normPre: (Tensor, Tensor)?
    let norm: (Tensor, Tensor)
    let weights: ViTWeights
    private var posEmbeds: [[Int]: Tensor] = [:]
    /// The pretrained pooled head on the final norm (CLIP's projection, SigLIP's MAP), f32.
    public var pooledHead: ViTWeights.PooledHead? { weights.pooledHead }
    public var pooledWidth: Int { weights.pooledWidth }
    private var pooledTensors: [String: Tensor] = [:]

    /// Bytes of the weights on the device.
    public let weightBytes: Int

    public init(weights: ViTWeights, ctx: KernelContext, precision: Precision) throws {
        let c = weights.config
        self.config = c; self.ctx = ctx; self.precision = precision; self.weights = weights
        if precision == .fp16 && !ctx.device.capabilities.storageBuffer16BitAccess {
            throw BackboneError("--precision fp16 needs 16-bit storage buffers, which \(ctx.device.name) lacks; use --precision fp32")
        }
        var bytes = 0
        func f32(_ name: String) throws -> Tensor {
            let t = try ctx.tensor(weights[name], [weights[name].count]); bytes += t.count * 4; return t
        }
        // GEMM operands in the working precision (f16 halves the weights' memory and traffic).
        func gemmWeight(_ name: String, _ shape: [Int]) throws -> Tensor {
            let v = weights[name]
            let t = precision == .fp16 ? try ctx.tensorF16(v, shape) : try ctx.tensor(v, shape)
            bytes += t.count * t.dtype.size
            return t
        }
        blocks = try (0..<c.depth).map { i in
            let b = "blocks.\(i)."
            // qkv and fc1 write activations in the working precision, so their biases share it.
            return Block(norm1w: try f32(b + "norm1.weight"), norm1b: try f32(b + "norm1.bias"),
                         norm2w: try f32(b + "norm2.weight"), norm2b: try f32(b + "norm2.bias"),
                         qkvW: try gemmWeight(b + "attn.qkv.weight", [3 * c.embedDim, c.embedDim]),
                         qkvB: c.qkvBias ? try gemmWeight(b + "attn.qkv.bias", [3 * c.embedDim]) : nil,
                         projW: try gemmWeight(b + "attn.proj.weight", [c.embedDim, c.embedDim]), projB: try f32(b + "attn.proj.bias"),
                         fc1W: try gemmWeight(b + "mlp.fc1.weight", [c.mlpHidden, c.embedDim]), fc1B: try gemmWeight(b + "mlp.fc1.bias", [c.mlpHidden]),
                         fc2W: try gemmWeight(b + "mlp.fc2.weight", [c.embedDim, c.mlpHidden]), fc2B: try f32(b + "mlp.fc2.bias"),
                         ls1: c.layerScale ? try f32(b + "ls1.gamma") : nil, ls2: c.layerScale ? try f32(b + "ls2.gamma") : nil)
        }
        let p = c.patchSize
        patchW = try gemmWeight("patch_embed.proj.weight", [c.embedDim, 3 * p * p])
        patchB = c.patchBias ? try f32("patch_embed.proj.bias") : nil
        var prefix: [Float] = []
        if c.classToken { prefix += weights["cls_token"] }
        if c.regTokens > 0 { prefix += weights["reg_token"] }
        prefixTokens = prefix.isEmpty ? nil : try ctx.tensor(prefix, [c.prefixTokens, c.embedDim])
        normPre = c.preNorm ? (try f32("norm_pre.weight"), try f32("norm_pre.bias")) : nil
        norm = (try f32("norm.weight"), try f32("norm.bias"))
        if let kind = weights.pooledHead {
            for (name, shape) in ViTWeights.pooledShapes(c, kind, projection: weights.pooledWidth) {
                let t = try ctx.tensor(weights[name], shape)
                bytes += t.count * 4
                pooledTensors[name] = t
            }
        }
        weightBytes = bytes
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
        case .map:
            let heads = c.numHeads, hd = D / heads
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
            return x
        }
    }

    /// The token layout for images of H × W pixels.
    public func layout(height: Int, width: Int) -> TokenLayout {
        TokenLayout(cls: config.classToken, registers: config.regTokens, gridH: height / config.patchSize, gridW: width / config.patchSize)
    }

    /// The position embedding for a grid, resized once per grid and kept.
    func positionEmbedding(_ gh: Int, _ gw: Int) throws -> Tensor {
        if let t = posEmbeds[[gh, gw]] { return t }
        let v = weights.positionEmbedding(gridH: gh, gridW: gw)
        let t = try ctx.tensor(v, [v.count / config.embedDim, config.embedDim])
        posEmbeds[[gh, gw]] = t
        return t
    }

    /// Runs the frozen forward on `images` (B, 3, H, W) f32, normalised, and returns the token
    /// sets asked for, each (B, T, D) f32 in `layout(height:width:)` order. Recorded into the
    /// context's stream; reading a result finishes it.
    public func forward(_ images: Tensor, taps: Set<TokenTap>) throws -> [TokenTap: Tensor] {
        let c = config, D = c.embedDim, p = c.patchSize
        guard images.rank == 4, images.shape[1] == 3, images.dtype == .f32 else {
            throw BackboneError("images \(images): expected (B, 3, H, W) f32")
        }
        let (B, H, W) = (images.shape[0], images.shape[2], images.shape[3])
        guard H >= p, W >= p else { throw BackboneError("images of \(H)×\(W) px are smaller than one \(p)×\(p) patch") }
        for t in taps { if case let .block(i) = t, !(0..<c.depth).contains(i) { throw BackboneError("block \(i) of a \(c.depth)-block model") } }
        let lay = layout(height: H, width: W)
        let (gh, gw, P, T, prefix) = (lay.gridH, lay.gridW, lay.patches, lay.total, lay.prefix)
        let act: DType = precision == .fp16 ? .f16 : .f32
        let img = try ctx.contiguous(images)

        // Patch embedding as a GEMM over im2col rows: (B, gh, p, gw, p) windows of each channel.
        let windows = Tensor(buffer: img.buffer, offset: img.offset, shape: [B, 3, gh, p, gw, p],
                             strides: [3 * H * W, H * W, p * W, W, p, 1], dtype: .f32)
        let windowsByPatch = try windows.permuted([0, 2, 4, 1, 3, 5])
        let patches = try ctx.empty([B, gh, gw, 3, p, p], dtype: act)
        try ctx.copy(windowsByPatch, into: patches)
        // The residual stream x (B, T, D) f32: prefix tokens and position embeddings first, then the
        // patch GEMM adds its output (residual epilogue).
        let x = try ctx.empty([B, T, D])
        let pos = try positionEmbedding(gh, gw)
        if c.noEmbedClass {
            if let pt = prefixTokens { try ctx.copy(try broadcast(pt, B), into: try x.slice(axis: 1, 0..<prefix)) }
            try ctx.copy(try broadcast(pos, B), into: try x.slice(axis: 1, prefix..<T))
        } else {
            if let pt = prefixTokens {
                let first = try ctx.binary(pt, try pos.slice(axis: 0, 0..<prefix), .add)
                try ctx.copy(try broadcast(first, B), into: try x.slice(axis: 1, 0..<prefix))
            }
            try ctx.copy(try broadcast(try pos.slice(axis: 0, prefix..<T), B), into: try x.slice(axis: 1, prefix..<T))
        }
        try ctx.gemm(try patches.reshaped([B, P, 3 * p * p]), patchW, into: try x.slice(axis: 1, prefix..<T), transB: true,
                     bias: patchB, residual: true)
        var stream = x
        if let (w, b) = normPre {
            stream = try ctx.layerNorm(x, gamma: w, beta: b, eps: c.normEps).y
        }
        var out: [TokenTap: Tensor] = [:]
        let rows = B * T
        let flat = try stream.reshaped([rows, D])
        // Blocks after the last one asked for are not run.
        let last = taps.contains(.norm) ? c.depth - 1 : taps.compactMap { if case let .block(i) = $0 { return i } else { return nil } }.max() ?? -1
        for (i, blk) in blocks.enumerated() where i <= last {
            // Attention branch.
            let h = try ctx.empty([rows, D], dtype: act)
            _ = try ctx.layerNorm(flat, gamma: blk.norm1w, beta: blk.norm1b, eps: c.normEps, into: h)
            let qkv = try ctx.empty([rows, 3 * D], dtype: act)
            try ctx.gemm(h, blk.qkvW, into: qkv, transB: true, bias: blk.qkvB)
            let packed = try qkv.reshaped([B, T, 3, c.numHeads, c.headDim])
            func part(_ j: Int) throws -> Tensor { try packed.slice(axis: 2, j..<(j + 1)).squeezed(2).permuted([0, 2, 1, 3]) }
            let o = try ctx.empty([B, T, c.numHeads, c.headDim], dtype: act)
            try ctx.attention(q: try part(0), k: try part(1), v: try part(2), scale: 1 / Float(c.headDim).squareRoot(),
                              into: try o.permuted([0, 2, 1, 3]))
            try ctx.gemm(try o.reshaped([rows, D]), blk.projW, into: flat, transB: true, bias: blk.projB, scale: blk.ls1, residual: true)
            // MLP branch.
            let h2 = try ctx.empty([rows, D], dtype: act)
            _ = try ctx.layerNorm(flat, gamma: blk.norm2w, beta: blk.norm2b, eps: c.normEps, into: h2)
            let m = try ctx.matmul(h2, blk.fc1W, transB: true, bias: blk.fc1B, activation: c.activation)
            try ctx.gemm(m, blk.fc2W, into: flat, transB: true, bias: blk.fc2B, scale: blk.ls2, residual: true)
            if taps.contains(.block(i)) {
                let copy = try ctx.empty([B, T, D])
                try ctx.copy(stream, into: copy)
                out[.block(i)] = copy
            }
            // Let the device start on this block while the next is recorded.
            try ctx.stream.submit()
        }
        if taps.contains(.norm) {
            out[.norm] = try ctx.layerNorm(stream, gamma: norm.0, beta: norm.1, eps: c.normEps).y
        }
        return out
    }

    /// A (rows, D) tensor as a (B, rows, D) view repeating it (stride 0).
    func broadcast(_ t: Tensor, _ b: Int) throws -> Tensor {
        Tensor(buffer: t.buffer, offset: t.offset, shape: [b] + t.shape, strides: [0] + t.strides, dtype: t.dtype)
    }
}
