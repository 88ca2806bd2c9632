import VulkanCompute

extension KernelContext {
    /// LayerNorm over the last axis: `y = (x − mean) · rstd · γ + β`. Returns y and the per-row
    /// statistics (rows, 2) = (mean, rstd) that the backward needs.
    public func layerNorm(_ x: Tensor, gamma: Tensor?, beta: Tensor?, eps: Float, into out: Tensor? = nil) throws -> (y: Tensor, stats: Tensor) {
        let op = "layerNorm"
        let y = try out ?? empty(x.shape)
        try checkDevice(op, x, y); try requireF32(op, x, y)
        guard y.shape == x.shape else { throw OpError.shape(op, "x \(x), y \(y)") }
        if x.rank > 1 {
            // Too large to bind: normalise the halves, stats concatenated in row order.
            var parts: [Tensor] = []
            if try splitting([x, y], { parts.append(try layerNorm($0[0], gamma: gamma, beta: beta, eps: eps, into: $0[1]).stats) }) {
                return (y, try concat(parts, axis: 0))
            }
        }
        let xv = try rowView(x, op: op), yv = try rowView(y, op: op)
        guard (gamma == nil) == (beta == nil) else { throw OpError.shape(op, "γ and β must both be given or both be nil") }
        for t in [gamma, beta].compactMap({ $0 }) {
            try checkDevice(op, t); try requireContiguous(op, t)
            guard t.count == xv.cols else { throw OpError.shape(op, "parameter \(t) for rows of \(xv.cols) in \(x)") }
        }
        let stats = try empty([xv.rows, 2])
        let (bx, ox) = try bind(x, .read, op: op), (by, oy) = try bind(y, .write, op: op), (bs, os) = try bind(stats, .write, op: op)
        let (bg, og) = try gamma.map { try bind($0, .read, op: op) } ?? (bx, 0)
        let (bb, ob) = try beta.map { try bind($0, .read, op: op) } ?? (bx, 0)
        var p = Push()
        for v in [xv.rows, xv.cols, ox, xv.stride, og, ob, oy, yv.stride, os] { p.u(v) }
        p.f(eps)
        let k = try rowKernel("layernorm", bindings: 5, push: p.bytes, spec: [variants.rowLocal, gamma == nil ? 0 : 1])
        try stream.dispatch(k, [bx, Binding(bg.range, .read), Binding(bb.range, .read), by, bs], push: p.words, groups: (rowGroups(xv.rows), 1, 1))
        return (y, stats)
    }

    /// LayerNorm backward: `dx (+)=`, and `dγ, dβ (+)=` when given.
    public func layerNormBackward(_ x: Tensor, gamma: Tensor?, stats: Tensor, _ dy: Tensor, into dx: Tensor?,
                                  dGamma: Tensor? = nil, dBeta: Tensor? = nil, accumulate: Bool = false) throws {
        let op = "layerNormBackward"
        try checkDevice(op, x, stats, dy); try requireF32(op, x, dy)
        guard dy.shape == x.shape else { throw OpError.shape(op, "x \(x), dy \(dy)") }
        if x.rank > 1, let dx {
            // Too large to bind: the halves (rows are independent; parameter gradients accumulate).
            let rowsPerItem = x.shape.dropFirst().dropLast().reduce(1, *)
            var first = true
            let split = try splitting([x, dy, dx]) { h in
                let n = h[0].shape[0] * rowsPerItem
                let start = (h[0].offset - x.offset) / max(x.strides[0], 1) * rowsPerItem
                try layerNormBackward(h[0], gamma: gamma, stats: try stats.slice(axis: 0, start..<(start + n)), h[1], into: h[2],
                                      dGamma: dGamma, dBeta: dBeta, accumulate: accumulate || !first)
                first = false
            }
            if split { return }
        }
        let xv = try rowView(x, op: op), dyv = try rowView(dy, op: op)
        guard stats.count == 2 * xv.rows else { throw OpError.shape(op, "stats \(stats) for \(xv.rows) rows") }
        let (bx, ox) = try bind(x, .read, op: op), (bs, os) = try bind(stats, .read, op: op), (bdy, ody) = try bind(dy, .read, op: op)
        if let dx {
            try checkDevice(op, dx)
            guard dx.shape == x.shape else { throw OpError.shape(op, "x \(x), dx \(dx)") }
            let dxv = try rowView(dx, op: op)
            let (bg, og) = try gamma.map { try bind($0, .read, op: op) } ?? (bx, 0)
            let (bdx, odx) = try bind(dx, accumulate ? .readWrite : .write, op: op)
            var p = Push()
            for v in [xv.rows, xv.cols, ox, xv.stride, og, os, ody, dyv.stride, odx, dxv.stride] { p.u(v) }
            p.f(Float(accumulate ? 1 : 0))
            let k = try rowKernel("layernorm_backward", bindings: 5, push: p.bytes, spec: [variants.rowLocal, gamma == nil ? 0 : 1])
            try stream.dispatch(k, [bx, Binding(bg.range, .read), bs, bdy, bdx], push: p.words, groups: (rowGroups(xv.rows), 1, 1))
        }
        if let dGamma, let dBeta {
            try checkDevice(op, dGamma, dBeta); try requireContiguous(op, dGamma, dBeta)
            guard dGamma.count == xv.cols, dBeta.count == xv.cols else { throw OpError.shape(op, "dγ \(dGamma), dβ \(dBeta) for \(xv.cols) columns") }
            let acc: Access = accumulate ? .readWrite : .write
            let (bg, og) = try bind(dGamma, acc, op: op), (bb, ob) = try bind(dBeta, acc, op: op)
            var p = Push()
            for v in [xv.rows, xv.cols, ox, xv.stride, os, ody, dyv.stride, og, ob] { p.u(v) }
            p.f(Float(accumulate ? 1 : 0))
            let k = try kernel("layernorm_param_grad", bindings: 5, push: p.bytes, spec: [variants.elementwiseLocal])
            try stream.dispatch(k, [bx, bs, bdy, bg, bb], push: p.words, groups: (groups(xv.cols, Int(variants.elementwiseLocal)), 1, 1))
        }
    }

    /// (outer, C, inner) view of a contiguous tensor with channels on `channelAxis`.
    func channelView(_ x: Tensor, _ channelAxis: Int, op: String) throws -> (outer: Int, C: Int, inner: Int) {
        try requireContiguous(op, x)
        guard x.shape.indices.contains(channelAxis) else { throw OpError.shape(op, "channel axis \(channelAxis) of \(x)") }
        return (x.shape[..<channelAxis].reduce(1, *), x.shape[channelAxis], x.shape[(channelAxis + 1)...].reduce(1, *))
    }

    /// BatchNorm over every axis but `channelAxis` (1d over (B, C): axis 1; over tokens (B, N, C):
    /// axis 2; 2d over (B, C, H, W): axis 1). Training uses batch statistics (biased variance) and
    /// updates the running buffers with the unbiased variance; evaluation uses the running buffers.
    /// Returns y and the (C, 2) batch statistics (mean, rstd) for the backward.
    public func batchNorm(_ x: Tensor, channelAxis: Int, gamma: Tensor?, beta: Tensor?, runningMean: Tensor, runningVar: Tensor,
                          training: Bool, momentum: Float = 0.1, eps: Float) throws -> (y: Tensor, stats: Tensor) {
        let op = "batchNorm"
        try checkDevice(op, x, runningMean, runningVar); try requireF32(op, x)
        let v = try channelView(x, channelAxis, op: op)
        for t in [gamma, beta, runningMean, runningVar].compactMap({ $0 }) {
            try checkDevice(op, t); try requireContiguous(op, t)
            guard t.count == v.C else { throw OpError.shape(op, "parameter \(t) for \(v.C) channels of \(x)") }
        }
        guard (gamma == nil) == (beta == nil) else { throw OpError.shape(op, "γ and β must both be given or both be nil") }
        if training && v.outer * v.inner < 2 { throw OpError.shape(op, "training needs more than one value per channel, got \(x)") }
        let y = try empty(x.shape), stats = try empty([v.C, 2])
        let (bx, ox) = try bind(x, .read, op: op), (bs, os) = try bind(stats, .readWrite, op: op)
        let (brm, orm) = try bind(runningMean, training ? .readWrite : .read, op: op)
        let (brv, orv) = try bind(runningVar, training ? .readWrite : .read, op: op)
        if training {
            var p = Push()
            for n in [v.outer, v.C, v.inner, ox, os, orm, orv] { p.u(n) }
            p.f(eps); p.f(momentum)
            let k = try rowKernel("batchnorm_stats", bindings: 4, push: p.bytes, spec: [variants.rowLocal, 1])
            try stream.dispatch(k, [bx, bs, brm, brv], push: p.words, groups: (rowGroups(v.C), 1, 1))
        }
        let (bg, og) = try gamma.map { try bind($0, .read, op: op) } ?? (bx, 0)
        let (bb, ob) = try beta.map { try bind($0, .read, op: op) } ?? (bx, 0)
        let (by, oy) = try bind(y, .write, op: op)
        var p = Push()
        for n in [x.count, v.C, v.inner, ox, os, orm, orv, og, ob, oy] { p.u(n) }
        p.f(eps)
        let k = try kernel("batchnorm_apply", bindings: 7, push: p.bytes, spec: [variants.elementwiseLocal, gamma == nil ? 0 : 1, training ? 0 : 1])
        try stream.dispatch(k, [bx, Binding(bs.range, .read), Binding(brm.range, .read), Binding(brv.range, .read),
                                Binding(bg.range, .read), Binding(bb.range, .read), by],
                            push: p.words, groups: (groups(x.count, Int(variants.elementwiseLocal)), 1, 1))
        return (y, stats)
    }

    /// BatchNorm backward. Training mode: the full batch-statistics gradient, plus dγ, dβ (into
    /// `dGammaBeta` (2C): dγ then dβ) when affine. Evaluation mode: `dx = γ · rstd_running · dy`.
    public func batchNormBackward(_ x: Tensor, channelAxis: Int, gamma: Tensor?, stats: Tensor, runningVar: Tensor,
                                  training: Bool, eps: Float, _ dy: Tensor, into dx: Tensor, dGammaBeta: Tensor? = nil,
                                  accumulate: Bool = false) throws {
        let op = "batchNormBackward"
        try checkDevice(op, x, stats, runningVar, dy, dx); try requireContiguous(op, dy, dx)
        let v = try channelView(x, channelAxis, op: op)
        guard dy.shape == x.shape, dx.shape == x.shape else { throw OpError.shape(op, "x \(x), dy \(dy), dx \(dx)") }
        if gamma != nil, dGammaBeta == nil, training { throw OpError.shape(op, "an affine BatchNorm needs dGammaBeta (2·C)") }
        if let d = dGammaBeta, d.count != 2 * v.C { throw OpError.shape(op, "dGammaBeta \(d) must hold 2·\(v.C)") }
        if !training, dGammaBeta != nil { throw OpError.unsupported(op, "parameter gradients in evaluation mode are not supported") }
        let acc: Access = accumulate ? .readWrite : .write
        let (bx, ox) = try bind(x, .read, op: op), (bs, os) = try bind(stats, .read, op: op), (brv, orv) = try bind(runningVar, .read, op: op)
        let (bg, og) = try gamma.map { try bind($0, .read, op: op) } ?? (bx, 0)
        let (bdy, ody) = try bind(dy, .read, op: op), (bdx, odx) = try bind(dx, acc, op: op)
        let (bdg, odg) = try dGammaBeta.map { try bind($0, acc, op: op) } ?? (bdx, 0)
        var p = Push()
        for n in [v.outer, v.C, v.inner, ox, os, orv, og, ody, odx, odg] { p.u(n) }
        p.f(eps); p.f(Float(accumulate ? 1 : 0))
        let affine = gamma != nil && dGammaBeta != nil
        let k = try rowKernel("batchnorm_backward", bindings: 7, push: p.bytes, spec: [variants.rowLocal, affine ? 1 : 0, training ? 0 : 1])
        let dgBinding = dGammaBeta == nil ? try Binding(device.makeBuffer(bytes: 16).whole, .write) : bdg
        try stream.dispatch(k, [bx, bs, brv, Binding(bg.range, .read), bdy, bdx, dgBinding], push: p.words, groups: (rowGroups(v.C), 1, 1))
    }
}
