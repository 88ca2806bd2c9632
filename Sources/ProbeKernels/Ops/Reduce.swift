import VulkanCompute

public enum ReduceOp: Sendable { case sum, mean, max, sumOfSquares }

extension KernelContext {
    /// Reduces `axis` of `x` (any strides). `max` also returns the argmax (i32, first maximum).
    public func reduce(_ x: Tensor, axis: Int, _ kind: ReduceOp, keepDim: Bool = false,
                       into out: Tensor? = nil, accumulate: Float = 0) throws -> (values: Tensor, argmax: Tensor?) {
        let op = "reduce(\(kind))"
        try checkDevice(op, x); try requireF32(op, x)
        guard x.shape.indices.contains(axis) else { throw OpError.shape(op, "axis \(axis) of \(x)") }
        guard x.shape[axis] > 0 else { throw OpError.shape(op, "axis \(axis) of \(x) is empty") }
        var outShape = x.shape
        if keepDim { outShape[axis] = 1 } else { outShape.remove(at: axis) }
        let values = try out ?? empty(outShape.isEmpty ? [1] : outShape)
        try checkDevice(op, values); try requireContiguous(op, values)
        guard values.count == max(1, outShape.reduce(1, *)) else { throw OpError.shape(op, "output \(values) for \(x) reduced over axis \(axis)") }
        let argmax = kind == .max ? try empty(outShape.isEmpty ? [1] : outShape, dtype: .i32) : nil
        // Too large to bind: reduce the halves of another axis into the matching output halves.
        if let s = (0..<x.rank).first(where: { $0 != axis && x.shape[$0] > 1 }) {
            let outAxis = keepDim || s < axis ? s : s - 1
            let vAll = try values.reshaped(keepDim ? outShape : (outShape.isEmpty ? [1] : outShape))
            var parts: [Tensor] = []
            let limit = device.capabilities.maxStorageBufferRange - 2 * device.capabilities.minStorageBufferOffsetAlignment
            if x.span * 4 > limit {
                let n = x.shape[s]
                for r in [0..<(n / 2), (n / 2)..<n] {
                    let res = try reduce(try x.slice(axis: s, r), axis: axis, kind, keepDim: keepDim,
                                         into: try contiguous(try vAll.slice(axis: outAxis, r)), accumulate: accumulate)
                    try copy(res.values, into: try vAll.slice(axis: outAxis, r))
                    if let a = res.argmax { parts.append(a) }
                }
                return (values, kind == .max ? try concatInts(parts, axis: outAxis) : nil)
            }
        }
        // View as (outer, R, inner): outer/inner collapse when their axes are contiguous with each other.
        let outerAxes = Array(0..<axis), innerAxes = Array((axis + 1)..<x.rank)
        guard let sOuter = collapsedStride(x, outerAxes), let sInner = collapsedStride(x, innerAxes) else {
            // The view does not collapse to (outer, R, inner): reduce a contiguous copy instead.
            return try reduce(try contiguous(x), axis: axis, kind, keepDim: keepDim, into: values, accumulate: accumulate)
        }
        let outer = outerAxes.map { x.shape[$0] }.reduce(1, *), inner = innerAxes.map { x.shape[$0] }.reduce(1, *)
        let (bx, ox) = try bind(x, .read, op: op)
        let (bo, oo) = try bind(values, accumulate != 0 ? .readWrite : .write, op: op)
        let (ba, oa) = try argmax.map { try bind($0, .write, op: op) } ?? (bo, 0)
        var p = Push()
        for v in [outer, x.shape[axis], inner, sOuter, x.strides[axis], sInner, ox, oo, oa] { p.u(v) }
        p.f(kind == .mean ? 1 / Float(x.shape[axis]) : 1)
        p.f(accumulate)
        let code: UInt32 = kind == .max ? 1 : kind == .sumOfSquares ? 2 : 0
        let k = try kernel("reduce_axis", bindings: 3, push: p.bytes, spec: [variants.elementwiseLocal, code])
        try stream.dispatch(k, [bx, bo, Binding(ba.range, kind == .max ? .write : .read)], push: p.words,
                            groups: (groups(outer * inner, Int(variants.elementwiseLocal)), 1, 1))
        return (values, argmax)
    }

    /// Concatenates i32 tensors (argmax halves) through the host (rare: only for oversized inputs).
    func concatInts(_ parts: [Tensor], axis: Int) throws -> Tensor {
        var shape = parts[0].shape
        shape[axis] = parts.map { $0.shape[axis] }.reduce(0, +)
        let outer = shape[..<axis].reduce(1, *)
        var out: [Int32] = []
        let host = try parts.map { try readInt32($0) }
        for o in 0..<outer { for (p, h) in zip(parts, host) { let w = p.count / outer; out += h[(o * w)..<((o + 1) * w)] } }
        return try tensor(out, shape)
    }

    /// Stride of the collapsed run of `axes` (1 element for none), or nil if they do not collapse.
    func collapsedStride(_ t: Tensor, _ axes: [Int]) -> Int? {
        let live = axes.filter { t.shape[$0] > 1 }
        guard let last = live.last else { return 0 }
        for (a, b) in zip(live, live.dropFirst()) where t.strides[a] != t.strides[b] * t.shape[b] { return nil }
        return t.strides[last]
    }

    /// `out[index] = Σ (x + c·y)²` over all elements (y optional): the squared L2 norms LARS needs.
    /// Two stages, no host round trip: per-invocation partials, then one sum.
    public func sumOfSquares(_ x: Tensor, plus y: Tensor? = nil, times c: Float = 0, into out: Tensor, at index: Int = 0) throws {
        let op = "sumOfSquares"
        try checkDevice(op, x, out); try requireContiguous(op, x, out); try requireF32(op, x, out)
        if let y { try checkDevice(op, y); try requireContiguous(op, y); guard y.count == x.count else { throw OpError.shape(op, "x \(x), y \(y)") } }
        let local = Int(variants.elementwiseLocal)
        let g = groups(x.count, local, cap: 64)
        let partials = try empty([g * local])
        let (bx, ox) = try bind(x, .read, op: op)
        let (by, oy) = try y.map { try bind($0, .read, op: op) } ?? (bx, 0)
        let (bp, op_) = try bind(partials, .write, op: op)
        var p = Push(); p.u(x.count); p.u(ox); p.u(oy); p.u(op_); p.f(c)
        let k = try kernel("sumsq_partial", bindings: 3, push: p.bytes, spec: [variants.elementwiseLocal, y == nil ? 0 : 1])
        try stream.dispatch(k, [bx, Binding(by.range, .read), bp], push: p.words, groups: (g, 1, 1))
        let target = try out.reshaped([out.count]).slice(axis: 0, index..<(index + 1))
        _ = try reduce(try partials.reshaped([1, g * local]), axis: 1, .sum, into: target)
    }
}

extension KernelContext {
    /// Gradient of `reduce(x, axis:, .max)`: dy placed at each argmax, zero elsewhere.
    public func maxBackward(_ dy: Tensor, argmax: Tensor, shape: [Int], axis: Int) throws -> Tensor {
        let op = "maxBackward"
        try checkDevice(op, dy, argmax); try requireContiguous(op, dy, argmax); try requireF32(op, dy)
        let outer = shape[..<axis].reduce(1, *), R = shape[axis], inner = shape[(axis + 1)...].reduce(1, *)
        guard dy.count == outer * inner, argmax.count == outer * inner, argmax.dtype == .i32 else {
            throw OpError.shape(op, "dy \(dy), argmax \(argmax) for \(shape) over axis \(axis)")
        }
        let dx = try empty(shape)
        let (bdy, ody) = try bind(dy, .read, op: op), (ba, oa) = try bind(argmax, .read, op: op), (bdx, odx) = try bind(dx, .write, op: op)
        var p = Push()
        for n in [outer, R, inner, ody, oa, odx] { p.u(n) }
        let k = try kernel("argmax_scatter", bindings: 3, push: p.bytes, spec: [variants.elementwiseLocal])
        try stream.dispatch(k, [bdy, ba, bdx], push: p.words, groups: (groups(dx.count, Int(variants.elementwiseLocal)), 1, 1))
        return dx
    }

    /// `x / max(‖x‖₂, eps)` over the last axis (F.normalize), or with `dy` its backward.
    public func l2Normalize(_ x: Tensor, eps: Float, backwardOf dy: Tensor? = nil) throws -> Tensor {
        let op = "l2Normalize"
        try checkDevice(op, x); try requireContiguous(op, x); try requireF32(op, x)
        if let dy { try checkDevice(op, dy); try requireContiguous(op, dy); guard dy.shape == x.shape else { throw OpError.shape(op, "x \(x), dy \(dy)") } }
        let cols = x.shape.last ?? 1, rows = x.count / max(cols, 1)
        let out = try empty(x.shape)
        let (bx, ox) = try bind(x, .read, op: op), (bo, oo) = try bind(out, .write, op: op)
        let (bdy, ody) = try dy.map { try bind($0, .read, op: op) } ?? (bx, 0)
        var p = Push()
        for n in [rows, cols, ox, ody, oo] { p.u(n) }
        p.f(eps)
        let k = try rowKernel("l2normalize", bindings: 3, push: p.bytes, spec: [variants.rowLocal, dy == nil ? 0 : 1])
        try stream.dispatch(k, [bx, Binding(bdy.range, .read), bo], push: p.words, groups: (rowGroups(rows), 1, 1))
        return out
    }
}
