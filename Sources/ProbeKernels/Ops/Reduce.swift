import ProbeShaders
import VulkanCompute

extension KernelContext {
    /// Reduces `axis` of `x` (any strides). `max` also returns the argmax (i32, first maximum).
    /// With `accumulate` (sums, into `out`), the result is added to what `out` holds.
    public func reduce(_ x: Tensor, axis: Int, _ kind: ReduceOp, keepDim: Bool = false,
                       into out: Tensor? = nil, accumulate: Bool = false) throws -> (values: Tensor, argmax: Tensor?) {
        let op = "reduce(\(kind))"
        try checkDevice(op, x); try requireF32(op, x)
        guard x.shape.indices.contains(axis) else { throw OpError.shape(op, "axis \(axis) of \(x)") }
        guard x.shape[axis] > 0 else { throw OpError.shape(op, "axis \(axis) of \(x) is empty") }
        if kind == .max && accumulate { throw OpError.unsupported(op, "accumulate applies to sums, not max") }
        var outShape = x.shape
        if keepDim { outShape[axis] = 1 } else { outShape.remove(at: axis) }
        let values = try out ?? empty(outShape.isEmpty ? [1] : outShape)
        try checkDevice(op, values); try requireContiguous(op, values)
        guard values.count == max(1, outShape.reduce(1, *)) else { throw OpError.shape(op, "output \(values) for \(x) reduced over axis \(axis)") }
        // View as (outer, R, inner): outer/inner collapse when their axes are contiguous with each other.
        let outerAxes = Array(0..<axis), innerAxes = Array((axis + 1)..<x.rank)
        guard let sOuter = collapsedStride(x, outerAxes), let sInner = collapsedStride(x, innerAxes) else {
            // The view does not collapse to (outer, R, inner): reduce a contiguous copy instead.
            let r = try reduce(try contiguous(x), axis: axis, kind, keepDim: keepDim, into: values, accumulate: accumulate)
            return (values, r.argmax)
        }
        let argmax = kind == .max ? try empty(outShape.isEmpty ? [1] : outShape, dtype: .i32) : nil
        let outer = outerAxes.map { x.shape[$0] }.reduce(1, *), R = x.shape[axis], inner = innerAxes.map { x.shape[$0] }.reduce(1, *)
        let xv = Tensor(buffer: x.buffer, offset: x.offset, shape: [outer, R, inner], strides: [sOuter, x.strides[axis], sInner], dtype: .f32)
        let ov = try values.reshaped([outer, inner])
        let av = try argmax?.reshaped([outer, inner])
        // Pieces: rows of the outer axis first, then R (pieces accumulate), then inner (only while
        // the outputs stay contiguous: outer == 1).
        let outputs = [ov] + (av.map { [$0] } ?? [])
        let innerOut: Int? = outer == 1 ? 1 : nil
        try forEachPiece(op, [xv] + outputs,
                         [SplitAxis(size: outer, axes: [0] + outputs.map { _ in 0 }),
                          SplitAxis(size: R, axes: [1] + outputs.map { _ in nil }),
                          SplitAxis(size: inner, axes: [2] + outputs.map { _ in innerOut })]) { t, ranges in
            let first = ranges[1].lowerBound == 0
            let (bx, ox) = try bind(t[0], .read, op: op)
            let acc = !first || accumulate
            let (bo, oo) = try bind(t[1], acc ? .readWrite : .write, op: op)
            let (ba, oa) = try bind(av == nil ? nil : t[2], .write, op: op, orPlaceholder: bo)
            let n = t[1].count
            let push = ReduceAxisKernel.Push(outer: t[0].shape[0], R: t[0].shape[1], inner: t[0].shape[2],
                                             sOuter: t[0].strides[0], sR: t[0].strides[1], sInner: t[0].strides[2],
                                             offX: ox, offO: oo, offA: oa, rOffset: ranges[1].lowerBound,
                                             scale: kind == .mean ? 1 / Float(R) : 1, accumulate: acc ? 1 : 0)
            // One output per invocation: each already loops over the reduced axis, and on lavapipe
            // grid-striding over outputs as well halved the mean over a 147 MB token batch.
            let groups = (groups(n, Int(variants.elementwiseLocal)), 1, 1)
            // x as a texel buffer where its buffer allows (as the copies): a gather per step of r;
            // sums along a contiguous inner axis in fours read four-element texels, four outputs
            // per invocation.
            let spec = ReduceAxisKernel.Spec(localSizeX: variants.elementwiseLocal, OP: kind.kernelCode)
            if variants.texelTwins {
                let s = t[0].strides, inner = t[0].shape[2]
                if variants.texel4, kind != .max, inner % 4 == 0, s[2] == 1, t[0].shape[0] == 1 || s[0] % 4 == 0,
                   t[0].shape[1] == 1 || s[1] % 4 == 0, ox % 4 == 0, oo % 4 == 0, let tx = texelBinding(bx, format: .rgba32ui) {
                    let k = try kernel(ReduceAxisKernel.self, .texel, .init(localSizeX: variants.elementwiseLocal, OP: kind.kernelCode, VEC4: true))
                    try stream.dispatch(k, [tx, bo, ba], push: push, groups: (self.groups(n / 4, Int(variants.elementwiseLocal)), 1, 1))
                    return
                }
                if let tx = texelBinding(bx, format: .r32ui) {
                    try stream.dispatch(try kernel(ReduceAxisKernel.self, .texel, spec), [tx, bo, ba], push: push, groups: groups)
                    return
                }
            }
            try stream.dispatch(try kernel(ReduceAxisKernel.self, .base, spec), [bx, bo, ba], push: push, groups: groups)
        }
        return (values, argmax)
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
        // At most 64 workgroups of partials, and no more than one binding holds.
        let partialCap = (device.capabilities.maxStorageBufferRange - device.capabilities.minStorageBufferOffsetAlignment) / 4 / local
        guard partialCap >= 1 else { throw OpError.unsupported(op, "one workgroup of \(local) partial sums exceeds maxStorageBufferRange") }
        let maxGroups = min(64, partialCap)
        let partials = try empty([groups(x.count, local, cap: maxGroups) * local])
        let target = try out.reshaped([out.count]).slice(axis: 0, index..<(index + 1))
        let k = try kernel(SumsqPartialKernel.self, .base, .init(localSizeX: variants.elementwiseLocal, HAS_Y: y != nil))
        let n = x.count
        let operands = try [x.reshaped([n])] + (y.map { [try $0.reshaped([n])] } ?? [])
        try forEachPiece(op, operands, [SplitAxis(size: n, axes: operands.map { _ in 0 })]) { t, ranges in
            let g = groups(t[0].count, local, cap: maxGroups)
            let (bx, ox) = try bind(t[0], .read, op: op)
            let (by, oy) = try bind(y == nil ? nil : t[1], .read, op: op, orPlaceholder: bx)
            let (bp, opart) = try bind(partials, .write, op: op)
            try stream.dispatch(k, [bx, by, bp], push: .init(n: t[0].count, offX: ox, offY: oy, offPart: opart, c: c), groups: (g, 1, 1))
            _ = try reduce(try partials.slice(axis: 0, 0..<(g * local)).reshaped([1, g * local]), axis: 1, .sum,
                           into: target, accumulate: ranges[0].lowerBound > 0)
        }
    }

    /// Gradient of `reduce(x, axis:, .max)`: dy placed at each argmax, zero elsewhere.
    public func maxBackward(_ dy: Tensor, argmax: Tensor, shape: [Int], axis: Int) throws -> Tensor {
        let op = "maxBackward"
        try checkDevice(op, dy, argmax); try requireContiguous(op, dy, argmax); try requireF32(op, dy)
        let outer = shape[..<axis].reduce(1, *), R = shape[axis], inner = shape[(axis + 1)...].reduce(1, *)
        guard dy.count == outer * inner, argmax.count == outer * inner, argmax.dtype == .i32 else {
            throw OpError.shape(op, "dy \(dy), argmax \(argmax) for \(shape) over axis \(axis)")
        }
        let dx = try empty(shape)
        let k = try kernel(ArgmaxScatterKernel.self, .base, .init(localSizeX: variants.elementwiseLocal))
        try forEachPiece(op, [try dy.reshaped([outer, inner]), try argmax.reshaped([outer, inner]), try dx.reshaped([outer, R, inner])],
                         [SplitAxis(size: outer, axes: [0, 0, 0]), SplitAxis(size: R, axes: [nil, nil, 1]),
                          SplitAxis(size: inner, axes: [1, 1, 2])]) { t, ranges in
            let (bdy, ody) = try bind(t[0], .read, op: op), (ba, oa) = try bind(t[1], .read, op: op), (bdx, odx) = try bind(t[2], .write, op: op)
            let push = ArgmaxScatterKernel.Push(outer: t[2].shape[0], R: t[2].shape[1], inner: t[2].shape[2], offDY: ody, sDY: t[0].strides[0],
                                                offA: oa, sA: t[1].strides[0], offDX: odx, sDXo: t[2].strides[0], sDXr: t[2].strides[1],
                                                rOffset: ranges[1].lowerBound)
            try stream.dispatch(k, [bdy, ba, bdx], push: push, groups: elementGroups(t[2].count))
        }
        return dx
    }
}
