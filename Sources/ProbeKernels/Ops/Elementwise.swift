import VulkanCompute

/// Binary elementwise operations.
public enum BinaryOp: UInt32, Sendable { case add = 0, subtract, multiply, divide }

extension KernelContext {
    /// `y = act(alpha · x + beta)` elementwise (contiguous f32). Splits tensors beyond maxStorageBufferRange.
    public func unary(_ x: Tensor, _ act: Activation = .none, alpha: Float = 1, beta: Float = 0, into out: Tensor? = nil) throws -> Tensor {
        let op = "unary(\(act))"
        let y = try out ?? empty(x.shape)
        try checkDevice(op, x, y); try requireContiguous(op, x, y); try requireF32(op, x, y)
        guard x.count == y.count else { throw OpError.shape(op, "x \(x) and y \(y) differ in size") }
        let k = try kernel("unary", bindings: 2, push: 20, spec: [variants.elementwiseLocal, act.rawValue])
        for (start, n) in elementChunks(x.count) {
            let (bx, ox) = try window(x, start: x.offset + start, count: n, access: .read, op: op)
            let (by, oy) = try window(y, start: y.offset + start, count: n, access: .write, op: op)
            var p = Push(); p.u(n); p.f(alpha); p.f(beta); p.u(ox); p.u(oy)
            try stream.dispatch(k, [bx, by], push: p.words, groups: (groups(n, Int(variants.elementwiseLocal)), 1, 1))
        }
        return y
    }

    /// `dx (+)= dy · alpha · act'(alpha · x + beta)`.
    public func unaryBackward(_ x: Tensor, _ dy: Tensor, _ act: Activation, alpha: Float = 1, beta: Float = 0,
                              into dx: Tensor, accumulate: Bool = false) throws {
        let op = "unaryBackward(\(act))"
        try checkDevice(op, x, dy, dx); try requireContiguous(op, x, dy, dx); try requireF32(op, x, dy, dx)
        guard x.count == dy.count, x.count == dx.count else { throw OpError.shape(op, "x \(x), dy \(dy), dx \(dx)") }
        let k = try kernel("unary_backward", bindings: 3, push: 28, spec: [variants.elementwiseLocal, act.rawValue])
        for (start, n) in elementChunks(x.count) {
            let (bx, ox) = try window(x, start: x.offset + start, count: n, access: .read, op: op)
            let (bdy, ody) = try window(dy, start: dy.offset + start, count: n, access: .read, op: op)
            let (bdx, odx) = try window(dx, start: dx.offset + start, count: n, access: accumulate ? .readWrite : .write, op: op)
            var p = Push(); p.u(n); p.f(alpha); p.f(beta); p.u(ox); p.u(ody); p.u(odx); p.f(Float(accumulate ? 1 : 0))
            try stream.dispatch(k, [bx, bdy, bdx], push: p.words, groups: (groups(n, Int(variants.elementwiseLocal)), 1, 1))
        }
    }

    /// Element ranges whose f32 windows fit a binding.
    func elementChunks(_ n: Int) -> [(Int, Int)] {
        let step = max(1, (device.capabilities.maxStorageBufferRange - 64) / 4)
        return stride(from: 0, to: max(n, 1), by: step).map { ($0, min(step, n - $0)) }.filter { $0.1 > 0 }
    }

    /// `z = (alpha · x) op (beta · y)` with NumPy broadcasting (up to 4 axes). x and y may be any
    /// views; z is new (or `into`, contiguous, of the broadcast shape).
    public func binary(_ x: Tensor, _ y: Tensor, _ kind: BinaryOp, alpha: Float = 1, beta: Float = 1, into out: Tensor? = nil) throws -> Tensor {
        let op = "binary(\(kind))"
        try checkDevice(op, x, y); try requireF32(op, x, y)
        let rank = max(x.rank, y.rank)
        guard rank <= 4 else { throw OpError.shape(op, "x \(x), y \(y): at most 4 axes") }
        func padded(_ t: Tensor) -> ([Int], [Int]) {
            (Array(repeating: 1, count: rank - t.rank) + t.shape, Array(repeating: 0, count: rank - t.rank) + t.strides)
        }
        let (xs, xst) = padded(x), (ys, yst) = padded(y)
        var shape: [Int] = []
        for d in 0..<rank {
            guard xs[d] == ys[d] || xs[d] == 1 || ys[d] == 1 else { throw OpError.shape(op, "x \(x) and y \(y) do not broadcast") }
            shape.append(max(xs[d], ys[d]))
        }
        let z = try out ?? empty(shape)
        try checkDevice(op, z); try requireContiguous(op, z); try requireF32(op, z)
        guard z.shape == shape else { throw OpError.shape(op, "output \(z) must have the broadcast shape \(shape)") }
        let bx = Tensor(buffer: x.buffer, offset: x.offset, shape: shape, strides: zip(xs, xst).map { $0 == 1 ? 0 : $1 }, dtype: .f32)
        let by = Tensor(buffer: y.buffer, offset: y.offset, shape: shape, strides: zip(ys, yst).map { $0 == 1 ? 0 : $1 }, dtype: .f32)
        try binaryChunk(bx, by, z, kind: kind, alpha: alpha, beta: beta)
        return z
    }

    private func binaryChunk(_ x: Tensor, _ y: Tensor, _ z: Tensor, kind: BinaryOp, alpha: Float, beta: Float) throws {
        let limit = device.capabilities.maxStorageBufferRange - 64
        if [x, y, z].contains(where: { $0.span * 4 > limit }), let axis = z.shape.firstIndex(where: { $0 > 1 }) {
            let h = z.shape[axis] / 2
            for r in [0..<h, h..<z.shape[axis]] {
                func cut(_ t: Tensor) throws -> Tensor {
                    t.strides[axis] == 0 ? Tensor(buffer: t.buffer, offset: t.offset, shape: { var s = t.shape; s[axis] = r.count; return s }(), strides: t.strides) : try t.slice(axis: axis, r)
                }
                try binaryChunk(try cut(x), try cut(y), try z.slice(axis: axis, r), kind: kind, alpha: alpha, beta: beta)
            }
            return
        }
        let pad = 4 - z.rank
        let shape = Array(repeating: 1, count: pad) + z.shape
        let sx = Array(repeating: 0, count: pad) + x.strides, sy = Array(repeating: 0, count: pad) + y.strides
        let (wx, ox) = try bind(x, .read, op: "binary"), (wy, oy) = try bind(y, .read, op: "binary"), (wz, oz) = try bind(z, .write, op: "binary")
        var p = Push()
        p.u(z.count); p.u(shape[1]); p.u(shape[2]); p.u(shape[3]); p.u(ox); p.u(oy); p.u(oz)
        sx.forEach { p.u($0) }; sy.forEach { p.u($0) }
        p.f(alpha); p.f(beta)
        let k = try kernel("binary", bindings: 3, push: p.bytes, spec: [variants.elementwiseLocal, kind.rawValue])
        try stream.dispatch(k, [wx, wy, wz], push: p.words, groups: (groups(z.count, Int(variants.elementwiseLocal)), 1, 1))
    }

    /// `x + y`, `x − y`, `x ⊙ y` with broadcasting.
    public func add(_ x: Tensor, _ y: Tensor) throws -> Tensor { try binary(x, y, .add) }
    public func mul(_ x: Tensor, _ y: Tensor) throws -> Tensor { try binary(x, y, .multiply) }
    /// `alpha · x`.
    public func scale(_ x: Tensor, _ alpha: Float) throws -> Tensor { try unary(x, .none, alpha: alpha) }

    /// Sums `x` down to `shape` (the reverse of broadcasting): the gradient of a broadcast operand.
    public func sumTo(_ x: Tensor, _ shape: [Int]) throws -> Tensor {
        let op = "sumTo"
        try requireContiguous(op, x)
        let pad = x.rank - shape.count
        guard pad >= 0 else { throw OpError.shape(op, "cannot sum \(x) to \(shape)") }
        let target = Array(repeating: 1, count: pad) + shape
        var cur = x
        for d in 0..<x.rank where target[d] != x.shape[d] {
            guard target[d] == 1 else { throw OpError.shape(op, "cannot sum \(x) to \(shape)") }
            cur = try reduce(cur, axis: d, .sum, keepDim: true).values
        }
        return try cur.reshaped(shape.isEmpty ? [1] : shape)
    }
}
