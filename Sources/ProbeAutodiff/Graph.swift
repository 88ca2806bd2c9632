import ProbeOps

/// A value in a recorded computation. Parameters and inputs that need gradients have
/// `requiresGrad`; after `Graph.backward` their `grad` holds ∂loss/∂value.
public final class Variable<B: Backend> {
    public let value: B.Value
    public let requiresGrad: Bool
    public var grad: B.Value?
    public let name: String?
    init(_ value: B.Value, requiresGrad: Bool, name: String? = nil) { self.value = value; self.requiresGrad = requiresGrad; self.name = name }
}

/// The tape: each op computes its forward now and records what its backward needs; `backward`
/// walks the records in reverse, accumulating gradients.
public final class Graph<B: Backend> {
    public typealias V = Variable<B>
    public let backend: B
    /// Training mode (BatchNorm batch statistics and running updates).
    public let training: Bool
    private var records: [() throws -> Void] = []

    public init(_ backend: B, training: Bool) { self.backend = backend; self.training = training }

    public func parameter(_ value: B.Value, name: String) -> V { V(value, requiresGrad: true, name: name) }
    public func input(_ value: B.Value, requiresGrad: Bool = false) -> V { V(value, requiresGrad: requiresGrad) }
    /// A non-trainable value (buffers, constants).
    public func constant(_ value: B.Value) -> V { V(value, requiresGrad: false) }

    public func shape(_ x: V) -> [Int] { backend.shape(x.value) }

    /// Adds `g` into `v.grad`.
    func accumulate(_ v: V, _ g: B.Value) throws {
        guard v.requiresGrad else { return }
        if let existing = v.grad {
            v.grad = try backend.binary(existing, g, .add)
            ownedGrads.insert(ObjectIdentifier(v))
        } else {
            v.grad = g   // may be another value's gradient or a view of it: not ours to update in place
            ownedGrads.remove(ObjectIdentifier(v))
        }
    }

    /// Gradients held in storage created for them here (no other value reads it), which a slice's
    /// backward may therefore update in place. Every accumulation into a value happens before its
    /// own backward runs (the tape is replayed in reverse), so nothing has read it yet.
    private var ownedGrads = Set<ObjectIdentifier>()

    /// Adds `g` into `range` of `axis` of `v.grad` (of shape `shape`): the gradient of a slice.
    func accumulateSlice(_ v: V, _ g: B.Value, shape: [Int], axis: Int, _ range: Range<Int>) throws {
        guard v.requiresGrad else { return }
        if let existing = v.grad, ownedGrads.contains(ObjectIdentifier(v)) {
            v.grad = try backend.addSlice(existing, g, axis: axis, range)
            return
        }
        let padded = try backend.padSlice(g, shape: shape, axis: axis, range)
        v.grad = try v.grad.map { try backend.binary($0, padded, .add) } ?? padded
        ownedGrads.insert(ObjectIdentifier(v))
    }

    /// Records an op whose output needs a gradient iff any input does.
    /// The backward closures hold the graph unowned: a graph that never runs `backward` (an
    /// evaluation pass) must still free its tape and every tensor the tape kept.
    func record(_ inputs: [V], _ value: B.Value, backward: @escaping (B.Value) throws -> Void) -> V {
        let out = V(value, requiresGrad: inputs.contains { $0.requiresGrad })
        if out.requiresGrad {
            records.append { [unowned out] in
                if let g = out.grad { try backward(g) }
            }
            retained.append(out)
        }
        return out
    }
    private var retained: [V] = []

    /// Backpropagates `grad` (∂loss/∂output) from `output` through every recorded op.
    public func backward(_ output: V, grad: B.Value) throws {
        output.grad = grad
        for r in records.reversed() { try r() }
        records = []
    }

    // MARK: Layout

    public func reshape(_ x: V, _ shape: [Int]) throws -> V {
        let old = self.shape(x)
        return record([x], try backend.reshape(x.value, shape)) { [unowned self] g in try accumulate(x, try backend.reshape(g, old)) }
    }

    public func permute(_ x: V, _ order: [Int]) throws -> V {
        var inverse = order
        for (i, o) in order.enumerated() { inverse[o] = i }
        return record([x], try backend.permute(x.value, order)) { [unowned self] g in try accumulate(x, try backend.permute(g, inverse)) }
    }

    public func slice(_ x: V, axis: Int, _ range: Range<Int>) throws -> V {
        let s = self.shape(x)
        return record([x], try backend.slice(x.value, axis: axis, range)) { [unowned self] g in
            try accumulateSlice(x, g, shape: s, axis: axis, range)
        }
    }

    public func concat(_ parts: [V], axis: Int) throws -> V {
        let sizes = parts.map { shape($0)[axis] }
        return record(parts, try backend.concat(parts.map(\.value), axis: axis)) { [unowned self] g in
            var at = 0
            for (p, n) in zip(parts, sizes) {
                if p.requiresGrad { try accumulate(p, try backend.slice(g, axis: axis, at..<(at + n))) }
                at += n
            }
        }
    }

    /// Broadcasts `x` (size-1 or missing leading axes) to `shape`.
    public func expand(_ x: V, _ shape: [Int]) throws -> V {
        let s = self.shape(x)
        return record([x], try backend.expand(x.value, shape)) { [unowned self] g in try accumulate(x, try backend.sumTo(g, s)) }
    }

    // MARK: Arithmetic

    /// `alpha · op(A) · op(B)` batched over leading axes; a rank-2 operand is shared by the batch.
    public func matmul(_ a: V, _ b: V, transA: Bool = false, transB: Bool = false, alpha: Float = 1) throws -> V {
        let sa = shape(a), sb = shape(b)
        let y = try backend.matmul(a.value, b.value, transA: transA, transB: transB, alpha: alpha)
        return record([a, b], y) { [unowned self] g in
            if a.requiresGrad {
                // dA = alpha · g · op(B)ᵀ  (or its transpose when A was transposed)
                var da = transA ? try backend.matmul(b.value, g, transA: transB, transB: true, alpha: alpha)
                                : try backend.matmul(g, b.value, transA: false, transB: !transB, alpha: alpha)
                if sa.count == 2 && backend.shape(da).count > 2 { da = try backend.sumTo(da, sa) }
                try accumulate(a, da)
            }
            if b.requiresGrad {
                var db = transB ? try backend.matmul(g, a.value, transA: true, transB: transA, alpha: alpha)
                                : try backend.matmul(a.value, g, transA: !transA, transB: false, alpha: alpha)
                if sb.count == 2 && backend.shape(db).count > 2 { db = try backend.sumTo(db, sb) }
                try accumulate(b, db)
            }
        }
    }

    /// PyTorch Linear: `x Wᵀ + b` over the last axis.
    public func linear(_ x: V, _ w: V, _ bias: V?) throws -> V {
        let xs = shape(x), inF = xs.last!, outF = shape(w)[0]
        let y = try backend.linear(x.value, w.value, bias?.value)
        return record([x, w] + (bias.map { [$0] } ?? []), y) { [unowned self] g in
            let g2 = try backend.reshape(g, [-1, outF])
            if x.requiresGrad { try accumulate(x, try backend.reshape(try backend.matmul(g2, w.value, transA: false, transB: false, alpha: 1), xs)) }
            if w.requiresGrad {
                let x2 = try backend.reshape(x.value, [-1, inF])
                try accumulate(w, try backend.matmul(g2, x2, transA: true, transB: false, alpha: 1))
            }
            if let bias, bias.requiresGrad { try accumulate(bias, try backend.reduce(g2, axis: 0, .sum)) }
        }
    }

    public func add(_ a: V, _ b: V) throws -> V {
        let sa = shape(a), sb = shape(b)
        return record([a, b], try backend.binary(a.value, b.value, .add)) { [unowned self] g in
            if a.requiresGrad { try accumulate(a, try backend.sumTo(g, sa)) }
            if b.requiresGrad { try accumulate(b, try backend.sumTo(g, sb)) }
        }
    }

    public func mul(_ a: V, _ b: V) throws -> V {
        let sa = shape(a), sb = shape(b)
        return record([a, b], try backend.binary(a.value, b.value, .multiply)) { [unowned self] g in
            if a.requiresGrad { try accumulate(a, try backend.sumTo(try backend.binary(g, b.value, .multiply), sa)) }
            if b.requiresGrad { try accumulate(b, try backend.sumTo(try backend.binary(g, a.value, .multiply), sb)) }
        }
    }

    public func scale(_ x: V, _ s: Float) throws -> V {
        record([x], try backend.scale(x.value, s)) { [unowned self] g in try accumulate(x, try backend.scale(g, s)) }
    }

    public func activation(_ x: V, _ act: Activation) throws -> V {
        record([x], try backend.unary(x.value, act)) { [unowned self] g in try accumulate(x, try backend.unaryBackward(x.value, g, act)) }
    }

    public func sum(_ x: V, axis: Int) throws -> V {
        let s = shape(x)
        return record([x], try backend.reduce(x.value, axis: axis, .sum)) { [unowned self] g in
            var kept = s; kept[axis] = 1
            try accumulate(x, try backend.expand(try backend.reshape(g, kept), s))
        }
    }

    public func mean(_ x: V, axis: Int) throws -> V {
        let n = Float(shape(x)[axis])
        return try scale(try sum(x, axis: axis), 1 / n)
    }

    public func amax(_ x: V, axis: Int) throws -> V {
        let s = shape(x)
        let (y, arg) = try backend.amax(x.value, axis: axis)
        return record([x], y) { [unowned self] g in try accumulate(x, try backend.amaxBackward(g, arg, shape: s, axis: axis)) }
    }

    // MARK: Normalisation, attention, convolution

    public func softmax(_ x: V, scale: Float = 1) throws -> V {
        let y = try backend.softmax(x.value, scale: scale)
        return record([x], y) { [unowned self] g in try accumulate(x, try backend.softmaxBackward(y, g, scale: scale)) }
    }

    public func layerNorm(_ x: V, gamma: V?, beta: V?, eps: Float) throws -> V {
        let (y, stats) = try backend.layerNorm(x.value, gamma?.value, beta?.value, eps: eps)
        return record([x] + [gamma, beta].compactMap { $0 }, y) { [unowned self] g in
            let wantParams = (gamma?.requiresGrad ?? false) || (beta?.requiresGrad ?? false)
            let (dx, dg, db) = try backend.layerNormBackward(x.value, gamma?.value, stats, g, wantInput: x.requiresGrad, wantParams: wantParams)
            if let dx { try accumulate(x, dx) }
            if let gamma, let dg { try accumulate(gamma, dg) }
            if let beta, let db { try accumulate(beta, db) }
        }
    }

    /// BatchNorm over all axes but `channelAxis`; running buffers are updated in place in training.
    public func batchNorm(_ x: V, channelAxis: Int, gamma: V?, beta: V?, runningMean: B.Value, runningVar: B.Value,
                          momentum: Float = 0.1, eps: Float) throws -> V {
        let (y, stats) = try backend.batchNorm(x.value, channelAxis: channelAxis, gamma?.value, beta?.value, runningMean: runningMean,
                                               runningVar: runningVar, training: training, momentum: momentum, eps: eps)
        let training = self.training
        return record([x] + [gamma, beta].compactMap { $0 }, y) { [unowned self] g in
            let (dx, dg, db) = try backend.batchNormBackward(x.value, channelAxis: channelAxis, gamma?.value, stats, runningVar: runningVar,
                                                             training: training, eps: eps, g)
            try accumulate(x, dx)
            if let gamma, let dg { try accumulate(gamma, dg) }
            if let beta, let db { try accumulate(beta, db) }
        }
    }

    /// Multi-head attention on (B, H, L, D) tensors; returns the output and the probabilities.
    public func attention(q: V, k: V, v: V, scale: Float) throws -> (out: V, probs: B.Value) {
        let (o, p) = try backend.attention(q.value, k.value, v.value, scale: scale)
        let out = record([q, k, v], o) { [unowned self] g in
            let (dq, dk, dv) = try backend.attentionBackward(q.value, k.value, v.value, probs: p, scale: scale, g,
                                                             want: GradientsWanted(q.requiresGrad, k.requiresGrad, v.requiresGrad))
            if let dq { try accumulate(q, dq) }
            if let dk { try accumulate(k, dk) }
            if let dv { try accumulate(v, dv) }
        }
        return (out, p)
    }

    /// Attention that keeps no probabilities on the tape: the forward is fused (never stores
    /// the (B, H, Lq, Lk) maps), and the backward recomputes them from q and k, which the tape
    /// keeps anyway — one block's maps alive at a time in a backbone's backward instead of every
    /// block's.
    public func attentionRecomputing(q: V, k: V, v: V, scale: Float) throws -> V {
        let o = try backend.attentionOutput(q.value, k.value, v.value, scale: scale)
        return record([q, k, v], o) { [unowned self] g in
            let (_, p) = try backend.attention(q.value, k.value, v.value, scale: scale)
            let (dq, dk, dv) = try backend.attentionBackward(q.value, k.value, v.value, probs: p, scale: scale, g,
                                                             want: GradientsWanted(q.requiresGrad, k.requiresGrad, v.requiresGrad))
            if let dq { try accumulate(q, dq) }
            if let dk { try accumulate(k, dk) }
            if let dv { try accumulate(v, dv) }
        }
    }

    /// Rotary position embedding of x (B, T, H, hd) by constant (T, hd) tables; its backward is
    /// the inverse rotation.
    public func rope(_ x: V, cos: B.Value, sin: B.Value, half: Bool) throws -> V {
        record([x], try backend.rope(x.value, cos: cos, sin: sin, half: half, inverse: false)) { [unowned self] g in
            try accumulate(x, try backend.rope(g, cos: cos, sin: sin, half: half, inverse: true))
        }
    }

    /// The identity, flushing the backend here in the forward and again when the backward
    /// passes: between a backbone's blocks, so that what a block no longer needs is freed.
    public func flushPoint(_ x: V) throws -> V {
        try backend.flush()
        return record([x], x.value) { [unowned self] g in
            try backend.flush()
            try accumulate(x, g)
        }
    }

    /// Gradient checkpointing: `body` runs now without a tape (none of its intermediate values
    /// is kept), and again in the backward on a tape of its own, whose gradients for `inputs`
    /// are then added here. `body` must compute the same values both times (no randomness, no
    /// running statistics).
    public func checkpoint(_ inputs: [V], _ body: @escaping (Graph<B>, [V]) throws -> V) throws -> V {
        let quiet = Graph(backend, training: training)
        let y = try body(quiet, inputs.map { quiet.constant($0.value) })
        return record(inputs, y.value) { [unowned self] g in
            let replay = Graph(backend, training: training)
            let xs = inputs.map { $0.requiresGrad ? replay.parameter($0.value, name: $0.name ?? "") : replay.constant($0.value) }
            let out = try body(replay, xs)
            try replay.backward(out, grad: g)
            for (x, r) in zip(inputs, xs) { if let grad = r.grad { try accumulate(x, grad) } }
        }
    }

    public func conv2d(_ x: V, _ w: V, padding: Int) throws -> V {
        record([x, w], try backend.conv2d(x.value, w.value, padding: padding)) { [unowned self] g in
            let (dx, dw) = try backend.conv2dBackward(x.value, w.value, padding: padding, g, wantInput: x.requiresGrad, wantWeight: w.requiresGrad)
            if let dx { try accumulate(x, dx) }
            if let dw { try accumulate(w, dw) }
        }
    }

    public func l2Normalize(_ x: V, eps: Float) throws -> V {
        record([x], try backend.l2Normalize(x.value, eps: eps)) { [unowned self] g in try accumulate(x, try backend.l2NormalizeBackward(x.value, g, eps: eps)) }
    }
}
