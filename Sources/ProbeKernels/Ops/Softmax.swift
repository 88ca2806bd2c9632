import VulkanCompute

extension KernelContext {
    /// Rows of a tensor over its last axis: (rows, cols, row stride), requiring the leading axes to
    /// collapse into one strided axis and the last axis to be contiguous.
    func rowView(_ t: Tensor, op: String) throws -> (rows: Int, cols: Int, stride: Int) {
        guard t.rank >= 1, t.strides[t.rank - 1] == 1 || t.shape[t.rank - 1] == 1 else {
            throw OpError.shape(op, "\(t): the last axis must be contiguous")
        }
        let cols = t.shape[t.rank - 1]
        let lead = Array(0..<(t.rank - 1))
        guard let s = collapsedStride(t, lead) else { throw OpError.shape(op, "\(t): leading axes must collapse; copy it contiguous first") }
        return (lead.map { t.shape[$0] }.reduce(1, *), cols, s == 0 ? cols : s)
    }

    func rowGroups(_ rows: Int) -> Int { max(1, min(rows, 65535)) }

    /// `softmax(scale · x + mask)` over the last axis. `mask`: (maskRows, cols), broadcast over rows
    /// (row r uses mask row r mod maskRows).
    public func softmax(_ x: Tensor, scale: Float = 1, mask: Tensor? = nil, into out: Tensor? = nil) throws -> Tensor {
        let op = "softmax"
        let y = try out ?? empty(x.shape)
        try checkDevice(op, x, y); try requireF32(op, x, y)
        guard y.shape == x.shape else { throw OpError.shape(op, "x \(x), y \(y)") }
        if mask == nil, x.rank > 1, try splitting([x, y], { _ = try softmax($0[0], scale: scale, into: $0[1]) }) { return y }
        let xv = try rowView(x, op: op), yv = try rowView(y, op: op)
        var maskRows = 1
        if let mask {
            try checkDevice(op, mask); try requireContiguous(op, mask); try requireF32(op, mask)
            guard mask.shape.last == xv.cols, xv.rows % max(1, mask.count / xv.cols) == 0 else {
                throw OpError.shape(op, "mask \(mask) does not broadcast over the rows of \(x)")
            }
            maskRows = mask.count / xv.cols
        }
        let (bx, ox) = try bind(x, .read, op: op), (by, oy) = try bind(y, .write, op: op)
        let (bm, om) = try mask.map { try bind($0, .read, op: op) } ?? (bx, 0)
        var p = Push()
        for v in [xv.rows, xv.cols, ox, xv.stride, om, maskRows, oy, yv.stride] { p.u(v) }
        p.f(scale)
        let k = try rowKernel("softmax", bindings: 3, push: p.bytes, spec: [variants.rowLocal, mask == nil ? 0 : 1])
        try stream.dispatch(k, [bx, Binding(bm.range, .read), by], push: p.words, groups: (rowGroups(xv.rows), 1, 1))
        return y
    }

    /// `dx (+)= scale · y ⊙ (dy − Σ dy ⊙ y)` over the last axis, given the softmax output y.
    public func softmaxBackward(_ y: Tensor, _ dy: Tensor, scale: Float = 1, into dx: Tensor, accumulate: Bool = false) throws {
        let op = "softmaxBackward"
        try checkDevice(op, y, dy, dx); try requireF32(op, y, dy, dx)
        guard y.shape == dy.shape, y.shape == dx.shape else { throw OpError.shape(op, "y \(y), dy \(dy), dx \(dx)") }
        if y.rank > 1, try splitting([y, dy, dx], { try softmaxBackward($0[0], $0[1], scale: scale, into: $0[2], accumulate: accumulate) }) { return }
        let yv = try rowView(y, op: op), dyv = try rowView(dy, op: op), dxv = try rowView(dx, op: op)
        let (by, oy) = try bind(y, .read, op: op), (bdy, ody) = try bind(dy, .read, op: op)
        let (bdx, odx) = try bind(dx, accumulate ? .readWrite : .write, op: op)
        var p = Push()
        for v in [yv.rows, yv.cols, oy, yv.stride, ody, dyv.stride, odx, dxv.stride] { p.u(v) }
        p.f(scale); p.f(Float(accumulate ? 1 : 0))
        let k = try rowKernel("softmax_backward", bindings: 3, push: p.bytes, spec: [variants.rowLocal])
        try stream.dispatch(k, [by, bdy, bdx], push: p.words, groups: (rowGroups(yv.rows), 1, 1))
    }
}
