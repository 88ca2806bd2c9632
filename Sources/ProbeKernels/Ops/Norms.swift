import ProbeShaders
import VulkanCompute

extension KernelContext {
    /// LayerNorm over the last axis: `y = (x − mean) · rstd · γ + β`. Returns y and the per-row
    /// statistics (rows, 2) = (mean, rstd) that the backward needs. x is f32; y f32, or f16
    /// (`into` an f16 tensor) for the inputs of an fp16 model's GEMMs.
    public func layerNorm(_ x: Tensor, gamma: Tensor?, beta: Tensor?, eps: Float, into out: Tensor? = nil) throws -> (y: Tensor, stats: Tensor) {
        try rowNorm("layerNorm", x, gamma: gamma, beta: beta, rms: false, eps: eps, into: out)
    }

    /// RMSNorm over the last axis (timm's `RmsNorm`, AIMv2): `y = x · rstd · γ` with
    /// `rstd = 1 / √(mean(x²) + eps)`. Statistics as `layerNorm`'s with the mean 0. Inference only:
    /// its backward arrives with fine-tuning.
    @discardableResult
    public func rmsNorm(_ x: Tensor, gamma: Tensor?, eps: Float, into out: Tensor? = nil) throws -> (y: Tensor, stats: Tensor) {
        try rowNorm("rmsNorm", x, gamma: gamma, beta: gamma, rms: true, eps: eps, into: out)
    }

    private func rowNorm(_ op: String, _ x: Tensor, gamma: Tensor?, beta: Tensor?, rms: Bool, eps: Float, into out: Tensor?) throws -> (y: Tensor, stats: Tensor) {
        let y = try out ?? empty(x.shape)
        try checkDevice(op, x, y); try requireF32(op, x)
        guard y.dtype.isF32OrF16 else { throw OpError.dtype(op, "y \(y) must be f32 or f16") }
        guard y.shape == x.shape else { throw OpError.shape(op, "x \(x), y \(y)") }
        let xv = try rows(x, op: op), yv = try rows(y, op: op)
        let (R, cols) = (xv.shape[0], xv.shape[1])
        guard (gamma == nil) == (beta == nil) else { throw OpError.shape(op, "γ and β must both be given or both be nil") }
        for t in [gamma, beta].compactMap({ $0 }) {
            try checkDevice(op, t); try requireContiguous(op, t)
            guard t.count == cols else { throw OpError.shape(op, "parameter \(t) for rows of \(cols) in \(x)") }
        }
        let stats = try empty([R, 2])
        let variant: LayernormKernel.Variant = y.dtype == .f16 ? (variants.rowSubgroup ? .sg_f16out : .f16out) : (variants.rowSubgroup ? .sg : .base)
        try forEachPiece(op, [xv, yv, stats], [SplitAxis(size: R, axes: [0, 0, 0])]) { t, _ in
            let (bx, ox) = try bind(t[0], .read, op: op), (by, oy) = try bind(t[1], .write, op: op), (bs, os) = try bind(t[2], .write, op: op)
            let (bg, og) = try bind(gamma, .read, op: op, orPlaceholder: bx), (bb, ob) = try bind(beta, .read, op: op, orPlaceholder: bx)
            let vec4 = rowVec4([cols, ox, t[0].strides[0], og, ob, oy, t[1].strides[0]])
            let k = try kernel(LayernormKernel.self, variant, .init(localSizeX: variants.rowLocal, AFFINE: gamma != nil, VEC4: vec4, RMS: rms))
            let push = LayernormKernel.Push(rows: t[0].shape[0], cols: cols, offX: ox, sX: t[0].strides[0], offG: og, offB: ob,
                                            offY: oy, sY: t[1].strides[0], offS: os, eps: eps)
            try stream.dispatch(k, [bx, bg, bb, by, bs], push: push, groups: rowGroups(t[0].shape[0]))
        }
        return (y, stats)
    }

    /// Whether a row kernel takes its float4 path: on CPU devices (lavapipe pays per memory
    /// instruction and lane), with the row length and every offset and row stride in fours.
    func rowVec4(_ values: [Int]) -> Bool {
        variants.elementsPerInvocation > 1 && values.allSatisfy { $0 % 4 == 0 }
    }

    /// LayerNorm backward: `dx (+)=`, and `dγ, dβ (+)=` when given.
    public func layerNormBackward(_ x: Tensor, gamma: Tensor?, stats: Tensor, _ dy: Tensor, into dx: Tensor?,
                                  dGamma: Tensor? = nil, dBeta: Tensor? = nil, accumulate: Bool = false) throws {
        let op = "layerNormBackward"
        try checkDevice(op, x, stats, dy); try requireF32(op, x, dy)
        guard dy.shape == x.shape else { throw OpError.shape(op, "x \(x), dy \(dy)") }
        let xv = try rows(x, op: op), dyv = try rows(dy, op: op)
        let (R, cols) = (xv.shape[0], xv.shape[1])
        guard stats.count == 2 * R else { throw OpError.shape(op, "stats \(stats) for \(R) rows") }
        let sv = try stats.reshaped([R, 2])
        if let dx {
            try checkDevice(op, dx)
            guard dx.shape == x.shape else { throw OpError.shape(op, "x \(x), dx \(dx)") }
            let dxv = try rows(dx, op: op)
            try forEachPiece(op, [xv, sv, dyv, dxv], [SplitAxis(size: R, axes: [0, 0, 0, 0])]) { t, _ in
                let (bx, ox) = try bind(t[0], .read, op: op), (bs, os) = try bind(t[1], .read, op: op), (bdy, ody) = try bind(t[2], .read, op: op)
                let (bdx, odx) = try bind(t[3], accumulate ? .readWrite : .write, op: op)
                let (bg, og) = try bind(gamma, .read, op: op, orPlaceholder: bx)
                let vec4 = rowVec4([cols, ox, t[0].strides[0], og, ody, t[2].strides[0], odx, t[3].strides[0]])
                let k = try kernel(LayernormBackwardKernel.self, variants.rowSubgroup ? .sg : .base,
                                   .init(localSizeX: variants.rowLocal, AFFINE: gamma != nil, VEC4: vec4))
                let push = LayernormBackwardKernel.Push(rows: t[0].shape[0], cols: cols, offX: ox, sX: t[0].strides[0], offG: og, offS: os,
                                                        offDY: ody, sDY: t[2].strides[0], offDX: odx, sDX: t[3].strides[0], accumulate: accumulate ? 1 : 0)
                try stream.dispatch(k, [bx, bg, bs, bdy, bdx], push: push, groups: rowGroups(t[0].shape[0]))
            }
        }
        if let dGamma, let dBeta {
            try checkDevice(op, dGamma, dBeta); try requireContiguous(op, dGamma, dBeta)
            guard dGamma.count == cols, dBeta.count == cols else { throw OpError.shape(op, "dγ \(dGamma), dβ \(dBeta) for \(cols) columns") }
            // Pieces of rows accumulate into the parameter gradients.
            try forEachPiece(op, [xv, sv, dyv], [SplitAxis(size: R, axes: [0, 0, 0])]) { t, ranges in
                let acc = accumulate || ranges[0].lowerBound > 0
                let (bx, ox) = try bind(t[0], .read, op: op), (bs, os) = try bind(t[1], .read, op: op), (bdy, ody) = try bind(t[2], .read, op: op)
                let (bg, og) = try bind(dGamma, acc ? .readWrite : .write, op: op), (bb, ob) = try bind(dBeta, acc ? .readWrite : .write, op: op)
                let push = LayernormParamGradKernel.Push(rows: t[0].shape[0], cols: cols, offX: ox, sX: t[0].strides[0], offS: os, offDY: ody,
                                                         sDY: t[2].strides[0], offDG: og, offDB: ob, accumulate: acc ? 1 : 0)
                // One column (or four) per invocation: each walks every row, so spread them over workgroups.
                let vec4 = rowVec4([cols, ox, t[0].strides[0], ody, t[2].strides[0], og, ob])
                let k = try kernel(LayernormParamGradKernel.self, .base, .init(localSizeX: variants.elementwiseLocal, VEC4: vec4))
                try stream.dispatch(k, [bx, bs, bdy, bg, bb], push: push, groups: (groups(vec4 ? cols / 4 : cols, Int(variants.elementwiseLocal)), 1, 1))
            }
        }
    }

    /// `x / max(‖x‖₂, eps)` over the last axis (F.normalize), or with `dy` its backward.
    public func l2Normalize(_ x: Tensor, eps: Float, backwardOf dy: Tensor? = nil) throws -> Tensor {
        let op = "l2Normalize"
        try checkDevice(op, x); try requireContiguous(op, x); try requireF32(op, x)
        if let dy { try checkDevice(op, dy); try requireContiguous(op, dy); guard dy.shape == x.shape else { throw OpError.shape(op, "x \(x), dy \(dy)") } }
        let out = try empty(x.shape)
        let xv = try rows(x, op: op), ov = try rows(out, op: op)
        let operands = [xv, ov] + (try dy.map { [try rows($0, op: op)] } ?? [])
        let k = try kernel(L2normalizeKernel.self, variants.rowSubgroup ? .sg : .base, .init(localSizeX: variants.rowLocal, BACKWARD: dy != nil))
        try forEachPiece(op, operands, [SplitAxis(size: xv.shape[0], axes: operands.map { _ in 0 })]) { t, _ in
            let (bx, ox) = try bind(t[0], .read, op: op), (bo, oo) = try bind(t[1], .write, op: op)
            let (bdy, ody) = try bind(dy == nil ? nil : t[2], .read, op: op, orPlaceholder: bx)
            try stream.dispatch(k, [bx, bdy, bo], push: .init(rows: t[0].shape[0], cols: t[0].shape[1], offX: ox, offDY: ody, offO: oo, eps: eps),
                                groups: rowGroups(t[0].shape[0]))
        }
        return out
    }

    /// (outer, C, inner) view of a contiguous tensor with channels on `channelAxis`.
    func channelView(_ x: Tensor, _ channelAxis: Int, op: String) throws -> Tensor {
        try requireContiguous(op, x)
        guard x.shape.indices.contains(channelAxis) else { throw OpError.shape(op, "channel axis \(channelAxis) of \(x)") }
        return try x.reshaped([x.shape[..<channelAxis].reduce(1, *), x.shape[channelAxis], x.shape[(channelAxis + 1)...].reduce(1, *)])
    }

    /// BatchNorm over every axis but `channelAxis` (1d over (B, C): axis 1; over tokens (B, N, C):
    /// axis 2; 2d over (B, C, H, W): axis 1). Training uses batch statistics (biased variance) and
    /// updates the running buffers with the unbiased variance; evaluation uses the running buffers.
    /// Returns y and the (C, 2) batch statistics (mean, rstd) for the backward. x beyond the
    /// binding limit is taken in pieces of the leading axes (statistics in two passes).
    public func batchNorm(_ x: Tensor, channelAxis: Int, gamma: Tensor?, beta: Tensor?, runningMean: Tensor, runningVar: Tensor,
                          training: Bool, momentum: Float = 0.1, eps: Float) throws -> (y: Tensor, stats: Tensor) {
        let op = "batchNorm"
        try checkDevice(op, x, runningMean, runningVar); try requireF32(op, x)
        let xv = try channelView(x, channelAxis, op: op)
        let (outer, C, inner) = (xv.shape[0], xv.shape[1], xv.shape[2])
        for t in [gamma, beta, runningMean, runningVar].compactMap({ $0 }) {
            try checkDevice(op, t); try requireContiguous(op, t)
            guard t.count == C else { throw OpError.shape(op, "parameter \(t) for \(C) channels of \(x)") }
        }
        guard (gamma == nil) == (beta == nil) else { throw OpError.shape(op, "γ and β must both be given or both be nil") }
        if training && outer * inner < 2 { throw OpError.shape(op, "training needs more than one value per channel, got \(x)") }
        let y = try empty(x.shape), stats = try empty([C, 2])
        let yv = try y.reshaped(xv.shape)
        let total = outer * inner
        if training {
            // One dispatch when x fits a binding; else a sum pass and a deviation pass over pieces.
            // Across a data-parallel group the same two passes, each followed by a sum over the
            // group: of the channel sums (and counts), then of the squared deviations from the
            // global mean, which a last, empty piece turns into mean, rstd and the running update.
            let reducer = batchReducer
            let fits = fitsBinding(xv) && reducer == nil
            let passes: [UInt32] = fits ? [0] : [1, 2]
            var groupTotal = total
            var pieces: [(Tensor, Bool, Bool)] = []
            try forEachPiece(op, [xv], [SplitAxis(size: outer, axes: [0])]) { t, r in pieces.append((t[0], r[0].lowerBound == 0, r[0].upperBound == outer)) }
            func statsDispatch(_ pass: UInt32, _ piece: Tensor, outer: Int, accumulate: Bool, finalize: Bool) throws {
                let (bx, ox) = try bind(piece, .read, op: op), (bs, os) = try bind(stats, .readWrite, op: op)
                // Channels last on CPU devices, one dispatch: four channels per invocation (batchnorm_stats.comp).
                let quads = pass == 0 && variants.elementsPerInvocation > 1 && inner == 1 && C % 4 == 0 && ox % 4 == 0
                let k = try kernel(BatchnormStatsKernel.self, variants.rowSubgroup ? .sg : .base,
                                   .init(localSizeX: variants.rowLocal, UPDATE_RUNNING: true, PASS: pass, CHANNEL_QUADS: quads))
                let (brm, orm) = try bind(runningMean, .readWrite, op: op), (brv, orv) = try bind(runningVar, .readWrite, op: op)
                let push = BatchnormStatsKernel.Push(outer: outer, C: C, inner: inner, offX: ox, offS: os, offRM: orm, offRV: orv,
                                                     total: groupTotal, accumulate: accumulate ? 1 : 0, finalize: finalize ? 1 : 0, eps: eps, momentum: momentum)
                try stream.dispatch(k, [bx, bs, brm, brv], push: push, groups: quads ? (groups(C / 4, Int(variants.rowLocal)), 1, 1) : rowGroups(C))
            }
            for pass in passes {
                for (piece, first, last) in pieces {
                    try statsDispatch(pass, piece, outer: piece.shape[0], accumulate: !first, finalize: last && reducer == nil)
                }
                guard let reducer else { continue }
                // stats (C, 2): the sums sit at even indices, the squared deviations at odd ones.
                let count = try reduceAcrossGroup(reducer, stats, indices: (0..<C).map { 2 * $0 + (pass == 1 ? 0 : 1) }, extra: [Double(total)])[0]
                guard count >= 2, count < Double(UInt32.max) else {
                    throw OpError.shape(op, "the group's batch has \(Int(count)) values per channel of \(x)")
                }
                groupTotal = Int(count)
                if pass == 2 { try statsDispatch(2, pieces[0].0, outer: 0, accumulate: true, finalize: true) }
            }
        }
        try forEachPiece(op, [xv, yv], [SplitAxis(size: outer, axes: [0, 0])]) { t, _ in
            let (bx, ox) = try bind(t[0], .read, op: op), (by, oy) = try bind(t[1], .write, op: op)
            let (bs, os) = try bind(stats, .read, op: op)
            let (brm, orm) = try bind(runningMean, .read, op: op), (brv, orv) = try bind(runningVar, .read, op: op)
            let (bg, og) = try bind(gamma, .read, op: op, orPlaceholder: bx), (bb, ob) = try bind(beta, .read, op: op, orPlaceholder: bx)
            let push = BatchnormApplyKernel.Push(n: t[0].count, C: C, inner: inner, offX: ox, offS: os, offRM: orm, offRV: orv,
                                                 offG: og, offB: ob, offY: oy, eps: eps)
            // Channels last on CPU devices: four channels per invocation over a share of the rows,
            // float4 loads (a texel view where it fits) and stores (batchnorm_apply.glsl).
            let quads = variants.elementsPerInvocation > 1 && inner == 1 && C % 4 == 0 && ox % 4 == 0 && oy % 4 == 0
            let spec = BatchnormApplyKernel.Spec(localSizeX: variants.elementwiseLocal, AFFINE: gamma != nil, EVAL: !training, CHANNEL_QUADS: quads)
            let groups = quads ? (groups(C / 4, Int(variants.elementwiseLocal)), min(t[0].shape[0], 64), 1) : elementGroups(t[0].count)
            if quads, variants.texelTwins, let tx = texelBinding(bx, format: .rgba32ui) {
                try stream.dispatch(try kernel(BatchnormApplyKernel.self, .texel, spec), [tx, bs, brm, brv, bg, bb, by], push: push, groups: groups)
                return
            }
            try stream.dispatch(try kernel(BatchnormApplyKernel.self, .base, spec), [bx, bs, brm, brv, bg, bb, by], push: push, groups: groups)
        }
        return (y, stats)
    }

    /// BatchNorm backward. Training mode: the full batch-statistics gradient, plus dγ, dβ (into
    /// `dGammaBeta` (2C): dγ then dβ) when affine. Evaluation mode: `dx = γ · rstd_running · dy`.
    public func batchNormBackward(_ x: Tensor, channelAxis: Int, gamma: Tensor?, stats: Tensor, runningVar: Tensor,
                                  training: Bool, eps: Float, _ dy: Tensor, into dx: Tensor, dGammaBeta: Tensor? = nil,
                                  accumulate: Bool = false) throws {
        let op = "batchNormBackward"
        try checkDevice(op, x, stats, runningVar, dy, dx); try requireContiguous(op, dy, dx)
        let xv = try channelView(x, channelAxis, op: op)
        let (outer, C, inner) = (xv.shape[0], xv.shape[1], xv.shape[2])
        guard dy.shape == x.shape, dx.shape == x.shape else { throw OpError.shape(op, "x \(x), dy \(dy), dx \(dx)") }
        if gamma != nil, dGammaBeta == nil, training { throw OpError.shape(op, "an affine BatchNorm needs dGammaBeta (2·C)") }
        if let d = dGammaBeta, d.count != 2 * C { throw OpError.shape(op, "dGammaBeta \(d) must hold 2·\(C)") }
        if !training, dGammaBeta != nil { throw OpError.unsupported(op, "parameter gradients in evaluation mode are not supported") }
        let dyv = try dy.reshaped(xv.shape), dxv = try dx.reshaped(xv.shape)
        let affine = gamma != nil && dGammaBeta != nil
        let reducer = training ? batchReducer : nil
        let split = !([xv, dyv, dxv].allSatisfy(fitsBinding)) || reducer != nil
        // Split training mode: the per-channel sums of every piece first (into a fresh buffer), then dx.
        // Across a data-parallel group, dx needs the group's sums (and count); dγ, dβ stay this
        // process's own (the trainer sums parameter gradients over the group itself).
        let sums = split && training ? try empty([2 * C]) : nil
        var groupTotal = outer * inner
        for pass in (split ? (training ? [1, 2] : [2]) : [0]) as [UInt32] {
            if pass == 2, let reducer, let sums {
                if affine, let dGammaBeta {
                    if accumulate { _ = try binary(dGammaBeta, sums, .add, into: dGammaBeta) } else { try copy(sums, into: dGammaBeta) }
                }
                let count = try reduceAcrossGroup(reducer, sums, indices: Array(0..<(2 * C)), extra: [Double(outer * inner)])[0]
                guard count >= 1, count < Double(UInt32.max) else { throw OpError.shape(op, "the group's batch has \(Int(count)) values per channel of \(x)") }
                groupTotal = Int(count)
            }
            try forEachPiece(op, [xv, dyv, dxv], [SplitAxis(size: outer, axes: [0, 0, 0])]) { t, r in
                let acc = pass == 1 ? r[0].lowerBound > 0 : accumulate
                let (bx, ox) = try bind(t[0], .read, op: op), (bs, os) = try bind(stats, .read, op: op), (brv, orv) = try bind(runningVar, .read, op: op)
                let (bg, og) = try bind(gamma, .read, op: op, orPlaceholder: bx)
                let (bdy, ody) = try bind(t[1], .read, op: op)
                let (bdx, odx) = try bind(t[2], pass == 1 ? .read : (acc ? .readWrite : .write), op: op)
                let target = pass == 0 ? dGammaBeta : sums
                let (bdg, odg) = try target.map { try bind($0, pass == 2 ? .read : (acc ? .readWrite : .write), op: op) } ?? (try scratchBinding(), 0)
                let push = BatchnormBackwardKernel.Push(outer: t[0].shape[0], C: C, inner: inner, offX: ox, offS: os, offRV: orv, offG: og,
                                                        offDY: ody, offDX: odx, offDG: odg, total: groupTotal, eps: eps, accumulate: acc ? 1 : 0)
                // Channels last on CPU devices, one dispatch in training: four channels per invocation.
                let quads = pass == 0 && training && variants.elementsPerInvocation > 1 && inner == 1 && C % 4 == 0
                    && [ox, ody, odx].allSatisfy { $0 % 4 == 0 }
                let k = try kernel(BatchnormBackwardKernel.self, variants.rowSubgroup ? .sg : .base,
                                   .init(localSizeX: variants.rowLocal, AFFINE: affine, EVAL: !training, PASS: pass, CHANNEL_QUADS: quads))
                try stream.dispatch(k, [bx, bs, brv, bg, bdy, bdx, bdg], push: push, groups: quads ? (groups(C / 4, Int(variants.rowLocal)), 1, 1) : rowGroups(C))
            }
        }
        if split, training, affine, reducer == nil, let sums, let dGammaBeta {
            if accumulate { _ = try binary(dGammaBeta, sums, .add, into: dGammaBeta) } else { try copy(sums, into: dGammaBeta) }
        }
    }
}
