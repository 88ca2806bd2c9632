import Foundation
import ProbeKernels
import VulkanCompute

/// timm's Hiera (`hiera.py`): a hierarchical ViT without [CLS]. A 7×7 stride-4 convolution makes
/// tokens at 1/4 of the image; they are "unrolled" (reordered so that every 2×2 stride group is
/// contiguous, three times over), and four stages of blocks follow. The first block of each later
/// stage widens the tokens (a projection) and max-pools them and the queries over each 2×2 group;
/// the first two stages attend within 8×8 mask units, the last two globally. After the last pool
/// the tokens are in image order again (a 7×7 grid at 224 px), which is what `forward_features`
/// returns (no final norm: the head normalises after pooling).
public struct HieraSpec: Codable, Sendable, Equatable {
    /// The first stage's width and heads (each later stage multiplies both by 2).
    public var embedDim: Int
    public var heads: Int
    public var stages: [Int]
    public var qPool = 3
    /// Per axis (timm `q_stride=(2, 2)`, `mask_unit_size=(8, 8)`).
    public var qStride = 2
    public var maskUnit = 8
    public var maskUnitAttn: [Bool] = [true, true, false, false]
    public var patchKernel = 7, patchStride = 4, patchPadding = 3

    public init(embedDim: Int, heads: Int, stages: [Int]) { self.embedDim = embedDim; self.heads = heads; self.stages = stages }

    /// One block's shape: widths in and out, heads, the flat query stride (4 where it pools, else
    /// 1), the flat mask-unit size after pooling, and whether it attends within mask units.
    public struct BlockPlan: Equatable, Sendable {
        public let dimIn, dimOut, heads, qStride, window: Int
        public let maskUnitAttn: Bool
    }

    /// The last block of each stage.
    public var stageEnds: [Int] { stages.indices.map { stages[...$0].reduce(0, +) - 1 } }

    /// Every block's plan, as timm's `Hiera.__init__` lays them out.
    public var plan: [BlockPlan] {
        let ends = stageEnds
        let qPoolBlocks = Set(ends.prefix(qPool).map { $0 + 1 })
        var dim = embedDim, heads = self.heads, stage = 0, window = maskUnit * maskUnit
        var out: [BlockPlan] = []
        for i in 0..<stages.reduce(0, +) {
            var dimOut = dim
            // timm reads the stage's mask-unit flag before advancing: a stage's first block attends
            // as the previous stage does.
            let mua = maskUnitAttn[min(stage, maskUnitAttn.count - 1)]
            if ends.contains(i - 1) {
                dimOut = dim * 2; heads *= 2; stage += 1
                if qPoolBlocks.contains(i) { window /= qStride * qStride }
            }
            out.append(BlockPlan(dimIn: dim, dimOut: dimOut, heads: heads, qStride: qPoolBlocks.contains(i) ? qStride * qStride : 1,
                                 window: window, maskUnitAttn: mua))
            dim = dimOut
        }
        return out
    }

    /// The stride of the final tokens in pixels (the patch stride times the pooled strides).
    public var outputStride: Int { patchStride * Int(pow(Double(qStride), Double(min(qPool, stages.count - 1)))) }

    /// The tensors and shapes under timm's names (the classifier head `head.*` is not the backbone's).
    func shapes(imgSize: Int) -> [String: [Int]] {
        let c0 = embedDim, tokens = (imgSize / patchStride) * (imgSize / patchStride)
        var s: [String: [Int]] = ["patch_embed.proj.weight": [c0, 3, patchKernel, patchKernel], "patch_embed.proj.bias": [c0],
                                  "pos_embed": [1, tokens, c0]]
        for (i, b) in plan.enumerated() {
            let p = "blocks.\(i)."
            s[p + "norm1.weight"] = [b.dimIn]; s[p + "norm1.bias"] = [b.dimIn]
            if b.dimIn != b.dimOut { s[p + "proj.weight"] = [b.dimOut, b.dimIn]; s[p + "proj.bias"] = [b.dimOut] }
            s[p + "attn.qkv.weight"] = [3 * b.dimOut, b.dimIn]; s[p + "attn.qkv.bias"] = [3 * b.dimOut]
            s[p + "attn.proj.weight"] = [b.dimOut, b.dimOut]; s[p + "attn.proj.bias"] = [b.dimOut]
            s[p + "norm2.weight"] = [b.dimOut]; s[p + "norm2.bias"] = [b.dimOut]
            s[p + "mlp.fc1.weight"] = [4 * b.dimOut, b.dimOut]; s[p + "mlp.fc1.bias"] = [4 * b.dimOut]
            s[p + "mlp.fc2.weight"] = [b.dimOut, 4 * b.dimOut]; s[p + "mlp.fc2.bias"] = [b.dimOut]
        }
        return s
    }

    /// A ViTConfig for a Hiera: width, heads and token stride are the last stage's (what the
    /// token sets hold); `depth` counts every block.
    public func config(imgSize: Int) -> ViTConfig {
        let last = plan.last!
        var c = ViTConfig(patchSize: outputStride, embedDim: last.dimOut, depth: plan.count, numHeads: last.heads, imgSize: imgSize)
        c.hiera = self
        c.family = .hiera
        c.classToken = false; c.absPosEmbed = false; c.finalNorm = false
        return c
    }
}

/// A Hiera's device weights and forward (see `HieraSpec`).
final class HieraForward {
    struct Block {
        let plan: HieraSpec.BlockPlan
        let norm1w, norm1b, norm2w, norm2b: Tensor
        let expandW: Tensor?, expandB: Tensor?
        let qkvW, qkvB, projW, projB, fc1W, fc1B, fc2W, fc2B: Tensor
    }
    let spec: HieraSpec
    let config: ViTConfig
    let ctx: KernelContext
    let act: DType
    let blocks: [Block]
    let patchW, patchB, pos: Tensor
    private(set) var bytes = 0

    init(_ weights: ViTWeights, ctx: KernelContext, precision: Precision) throws {
        let c = weights.config
        spec = c.hiera!; config = c; self.ctx = ctx
        act = precision == .fp16 ? .f16 : .f32
        var bytes = 0
        func f32(_ name: String) throws -> Tensor { let t = try ctx.tensor(weights[name], [weights[name].count]); bytes += t.count * 4; return t }
        func gemmWeight(_ name: String, _ shape: [Int]) throws -> Tensor {
            let t = precision == .fp16 ? try ctx.tensorF16(weights[name], shape) : try ctx.tensor(weights[name], shape)
            bytes += t.count * t.dtype.size
            return t
        }
        blocks = try spec.plan.enumerated().map { i, b in
            let p = "blocks.\(i)."
            return Block(plan: b, norm1w: try f32(p + "norm1.weight"), norm1b: try f32(p + "norm1.bias"),
                         norm2w: try f32(p + "norm2.weight"), norm2b: try f32(p + "norm2.bias"),
                         expandW: b.dimIn != b.dimOut ? try gemmWeight(p + "proj.weight", [b.dimOut, b.dimIn]) : nil,
                         expandB: b.dimIn != b.dimOut ? try f32(p + "proj.bias") : nil,
                         qkvW: try gemmWeight(p + "attn.qkv.weight", [3 * b.dimOut, b.dimIn]), qkvB: try gemmWeight(p + "attn.qkv.bias", [3 * b.dimOut]),
                         projW: try gemmWeight(p + "attn.proj.weight", [b.dimOut, b.dimOut]), projB: try f32(p + "attn.proj.bias"),
                         fc1W: try gemmWeight(p + "mlp.fc1.weight", [4 * b.dimOut, b.dimOut]), fc1B: try gemmWeight(p + "mlp.fc1.bias", [4 * b.dimOut]),
                         fc2W: try gemmWeight(p + "mlp.fc2.weight", [b.dimOut, 4 * b.dimOut]), fc2B: try f32(p + "mlp.fc2.bias"))
        }
        let k = spec.patchKernel
        patchW = try gemmWeight("patch_embed.proj.weight", [spec.embedDim, 3 * k * k])
        patchB = try f32("patch_embed.proj.bias")
        let posValues = weights["pos_embed"]
        pos = try ctx.tensor(posValues, [posValues.count / spec.embedDim, spec.embedDim])
        bytes += pos.count * 4
        self.bytes = bytes
    }

    /// The first block whose output is in the final grid and width (the taps extraction can write
    /// beside `norm`: one grid and width per token set).
    var firstFinalBlock: Int {
        let plan = spec.plan, last = plan.last!
        let lastPool = plan.lastIndex { $0.qStride > 1 } ?? 0
        return max(lastPool, plan.firstIndex { $0.dimOut == last.dimOut } ?? 0)
    }

    /// Max over `groups` equal parts of axis 1 of rows (B, groups · n, C) in any storage → (B, n, C) in `dtype`.
    func maxPool(_ x: Tensor, groups: Int, dtype: DType) throws -> Tensor {
        let (B, N, C) = (x.shape[0], x.shape[1], x.shape[2])
        var wide = x
        if x.dtype != .f32 { wide = try ctx.empty(x.shape); try ctx.copy(x, into: wide) }
        let pooled = try ctx.reduce(try wide.reshaped([B, groups, N / groups, C]), axis: 1, .max).values
        if dtype == .f32 { return pooled }
        let out = try ctx.empty(pooled.shape, dtype: dtype)
        try ctx.copy(pooled, into: out)
        return out
    }

    /// The zero-padded images' overlapping k×k windows at stride s (im2col): (B, ho·wo, 3·k·k) in
    /// `dtype`, the patch embedding's GEMM operand (and a fine-tuned embedding's input).
    func im2col(_ images: Tensor, dtype: DType) throws -> Tensor {
        let (B, H, W) = (images.shape[0], images.shape[2], images.shape[3])
        guard images.rank == 4, images.shape[1] == 3, H == config.imgSize, W == config.imgSize else {
            throw BackboneError("Hiera runs at its \(config.imgSize) px (its position table covers \(config.imgSize / spec.patchStride)² tokens); the input is \(H)×\(W): use --image-size \(config.imgSize)")
        }
        let (k, s, pad) = (spec.patchKernel, spec.patchStride, spec.patchPadding)
        let ho = (H + 2 * pad - k) / s + 1, wo = (W + 2 * pad - k) / s + 1
        let (hp, wp) = (H + 2 * pad, W + 2 * pad)
        let padded = try ctx.tensor([Float](repeating: 0, count: B * 3 * hp * wp), [B, 3, hp, wp])
        try ctx.copy(try ctx.contiguous(images), into: try padded.slice(axis: 2, pad..<(pad + H)).slice(axis: 3, pad..<(pad + W)))
        let windows = Tensor(buffer: padded.buffer, offset: padded.offset, shape: [B, ho, wo, 3, k, k],
                             strides: [3 * hp * wp, s * wp, s, hp * wp, wp, 1], dtype: .f32)
        let cols = try ctx.empty([B, ho, wo, 3, k, k], dtype: dtype)
        try ctx.copy(windows, into: cols)
        return try cols.reshaped([B, ho * wo, 3 * k * k])
    }

    func forward(_ images: Tensor, taps: Set<TokenTap>) throws -> [TokenTap: Tensor] {
        let first = firstFinalBlock
        for t in taps {
            if case let .block(i) = t, i < first {
                throw BackboneError("block \(i) of this Hiera is in an earlier stage (\(spec.plan[i].dimOut) wide, another grid); a token set holds one grid: tap `norm` or blocks \(first)…\(spec.plan.count - 1) (the last stage)")
            }
        }
        let last = taps.contains(.norm) ? blocks.count - 1 : taps.compactMap { if case let .block(i) = $0 { return i } else { return nil } }.max() ?? -1
        var out: [TokenTap: Tensor] = [:]
        let x = try stream(images, through: last) { i, x in
            if taps.contains(.block(i)) {
                let copy = try ctx.empty(x.shape)
                try ctx.copy(x, into: copy)
                out[.block(i)] = copy
            }
        }
        if taps.contains(.norm) { out[.norm] = x }
        return out
    }

    /// The residual stream (B, N, D) f32 after block `last` (any stage: the tokens in timm's
    /// unrolled order), `each` seeing it after every block; -1: the unrolled embeddings.
    func stream(_ images: Tensor, through last: Int, each: (Int, Tensor) throws -> Void = { _, _ in }) throws -> Tensor {
        let B = images.shape[0], c0 = spec.embedDim
        let cols = try im2col(images, dtype: act)
        let n0 = cols.shape[1]
        let (ho, wo) = (config.imgSize / spec.patchStride, config.imgSize / spec.patchStride)
        let embedded = try ctx.empty([B, n0, c0])
        try ctx.copy(Tensor(buffer: pos.buffer, offset: pos.offset, shape: [B, n0, c0], strides: [0, c0, 1], dtype: .f32), into: embedded)
        try ctx.gemm(cols, patchW, into: embedded, transB: true, bias: patchB, residual: true)
        // Unroll: three times, move each 2×2 stride offset in front of the (halved) grid.
        var x = embedded, (gh, gw, batches) = (ho, wo, B)
        let q = spec.qStride
        for _ in 0..<min(spec.qPool, spec.stages.count - 1) {
            let (h2, w2) = (gh / q, gw / q)
            let view = Tensor(buffer: x.buffer, offset: x.offset, shape: [batches, q, q, h2, w2, c0],
                              strides: [gh * gw * c0, gw * c0, c0, q * gw * c0, q * c0, 1], dtype: .f32)
            let next = try ctx.empty([batches, q, q, h2, w2, c0])
            try ctx.copy(view, into: next)
            x = next; batches *= q * q; gh = h2; gw = w2
        }
        x = try x.reshaped([B, n0, c0])
        for (i, blk) in blocks.enumerated() where i <= last {
            x = try block(blk, x)
            try each(i, x)
            try ctx.stream.submit()
        }
        return x
    }

    /// One block on the residual stream x (B, N, dimIn) f32 → (B, N / qStride, dimOut) f32.
    func block(_ b: Block, _ x: Tensor) throws -> Tensor {
        let p = b.plan, (B, N) = (x.shape[0], x.shape[1])
        let nq = N / p.qStride, D = p.dimOut, heads = p.heads, hd = D / heads
        let xn = try ctx.empty([B, N, p.dimIn], dtype: act)
        _ = try ctx.layerNorm(try x.reshaped([B * N, p.dimIn]), gamma: b.norm1w, beta: b.norm1b, eps: 1e-6, into: try xn.reshaped([B * N, p.dimIn]))
        // The residual: x itself, or the normed tokens widened and max-pooled over each 2×2 group.
        var stream = x
        if let w = b.expandW {
            let wide = try ctx.empty([B * N, D])
            try ctx.gemm(try xn.reshaped([B * N, p.dimIn]), w, into: wide, transB: true, bias: b.expandB)
            stream = try maxPool(try wide.reshaped([B, N, D]), groups: p.qStride, dtype: .f32)
        }
        // Attention: mask-unit windows (tokens l·nw + w: window w, position l) or one global window.
        let qkv = try ctx.empty([B * N, 3 * D], dtype: act)
        try ctx.gemm(try xn.reshaped([B * N, p.dimIn]), b.qkvW, into: qkv, transB: true, bias: b.qkvB)
        let nw = p.maskUnitAttn ? N / (p.qStride * p.window) : 1
        let L = N / nw, lq = L / p.qStride
        let packed = try qkv.reshaped([B, L, nw, 3, heads, hd])
        // q, k, v as dense (B, heads, nw, L, hd), so that (heads, windows) merge into attention's batch of heads.
        func dense(_ j: Int) throws -> Tensor {
            let view = try packed.slice(axis: 3, j..<(j + 1)).squeezed(3).permuted([0, 3, 2, 1, 4])
            let t = try ctx.empty([B, heads, nw, L, hd], dtype: act)
            try ctx.copy(view, into: t)
            return t
        }
        var qd = try dense(0)
        if p.qStride > 1 {
            // Query pooling: the max over the stride group, the outermost part of each window's positions.
            qd = try maxPool(try qd.reshaped([B * heads * nw, p.qStride, lq * hd]), groups: p.qStride, dtype: act).reshaped([B, heads, nw, lq, hd])
        }
        let o = try ctx.empty([B, heads * nw, lq, hd], dtype: act)
        try ctx.attention(q: try qd.reshaped([B, heads * nw, lq, hd]), k: try dense(1).reshaped([B, heads * nw, L, hd]),
                          v: try dense(2).reshaped([B, heads * nw, L, hd]), scale: 1 / Float(hd).squareRoot(), into: o)
        // Back to tokens (l·nw + w) of D = (heads, hd).
        let merged = try ctx.empty([B, lq, nw, heads, hd], dtype: act)
        try ctx.copy(try o.reshaped([B, heads, nw, lq, hd]).permuted([0, 3, 2, 1, 4]), into: merged)
        let flat = try stream.reshaped([B * nq, D])
        try ctx.gemm(try merged.reshaped([B * nq, D]), b.projW, into: flat, transB: true, bias: b.projB, residual: true)
        // MLP.
        let h2 = try ctx.empty([B * nq, D], dtype: act)
        _ = try ctx.layerNorm(flat, gamma: b.norm2w, beta: b.norm2b, eps: 1e-6, into: h2)
        let m = try ctx.matmul(h2, b.fc1W, transB: true, bias: b.fc1B, activation: .gelu)
        try ctx.gemm(m, b.fc2W, into: flat, transB: true, bias: b.fc2B, residual: true)
        return try flat.reshaped([B, nq, D])
    }
}
