import ProbeShaders
import VulkanCompute

extension KernelContext {
    /// The iteration space of an elementwise op over contiguous operands of `count` elements.
    private func flat(_ ts: [Tensor]) throws -> ([Tensor], [SplitAxis]) {
        let n = ts[0].count
        return (try ts.map { try $0.reshaped([n]) }, [SplitAxis(size: n, axes: ts.map { _ in 0 })])
    }

    /// `y = act(alpha · x + beta)` elementwise (contiguous f32).
    public func unary(_ x: Tensor, _ act: Activation = .none, alpha: Float = 1, beta: Float = 0, into out: Tensor? = nil) throws -> Tensor {
        let op = "unary(\(act))"
        let y = try out ?? empty(x.shape)
        try checkDevice(op, x, y); try requireContiguous(op, x, y); try requireF32(op, x, y)
        guard x.count == y.count else { throw OpError.shape(op, "x \(x) and y \(y) differ in size") }
        if x.count == 0 { return y }
        let (operands, axes) = try flat([x, y])
        try forEachPiece(op, operands, axes) { t, _ in
            let (bx, ox) = try bind(t[0], .read, op: op), (by, oy) = try bind(t[1], .write, op: op)
            // float4 loads and stores on CPU devices (lavapipe pays per memory instruction and lane).
            let vec4 = variants.elementsPerInvocation > 1 && [t[0].count, ox, oy].allSatisfy { $0 % 4 == 0 }
            let spec = UnaryKernel.Spec(localSizeX: variants.elementwiseLocal, OP: act.rawValue, VEC4: vec4)
            let push = UnaryKernel.Push(n: t[0].count, alpha: alpha, beta: beta, offX: ox, offY: oy)
            let groups = elementGroups(vec4 ? t[0].count / 4 : t[0].count)
            if variants.texelTwins, let tx = texelBinding(bx, format: vec4 ? .rgba32ui : .r32ui) {
                try stream.dispatch(try kernel(UnaryKernel.self, .texel, spec), [tx, by], push: push, groups: groups)
                return
            }
            try stream.dispatch(try kernel(UnaryKernel.self, .base, spec), [bx, by], push: push, groups: groups)
        }
        return y
    }

    /// `dx (+)= dy · alpha · act'(alpha · x + beta)`.
    public func unaryBackward(_ x: Tensor, _ dy: Tensor, _ act: Activation, alpha: Float = 1, beta: Float = 0,
                              into dx: Tensor, accumulate: Bool = false) throws {
        let op = "unaryBackward(\(act))"
        try checkDevice(op, x, dy, dx); try requireContiguous(op, x, dy, dx); try requireF32(op, x, dy, dx)
        guard x.count == dy.count, x.count == dx.count else { throw OpError.shape(op, "x \(x), dy \(dy), dx \(dx)") }
        if x.count == 0 { return }
        let (operands, axes) = try flat([x, dy, dx])
        try forEachPiece(op, operands, axes) { t, _ in
            let (bx, ox) = try bind(t[0], .read, op: op), (bdy, ody) = try bind(t[1], .read, op: op)
            let (bdx, odx) = try bind(t[2], accumulate ? .readWrite : .write, op: op)
            let vec4 = variants.elementsPerInvocation > 1 && [t[0].count, ox, ody, odx].allSatisfy { $0 % 4 == 0 }
            let push = UnaryBackwardKernel.Push(n: t[0].count, alpha: alpha, beta: beta, offX: ox, offDY: ody, offDX: odx)
            let groups = elementGroups(vec4 ? t[0].count / 4 : t[0].count)
            let format: TexelFormat = vec4 ? .rgba32ui : .r32ui
            if variants.texelTwins, let tx = texelBinding(bx, format: format), let tdy = texelBinding(bdy, format: format) {
                let spec = UnaryBackwardKernel.Spec(localSizeX: variants.elementwiseLocal, OP: act.rawValue, VEC4: vec4, ACCUMULATE: accumulate)
                try stream.dispatch(try kernel(UnaryBackwardKernel.self, .texel, spec), [tx, tdy, bdx], push: push, groups: groups)
                return
            }
            let spec = UnaryBackwardKernel.Spec(localSizeX: variants.elementwiseLocal, OP: act.rawValue, VEC4: vec4, ACCUMULATE: accumulate)
            try stream.dispatch(try kernel(UnaryBackwardKernel.self, .base, spec), [bx, bdy, bdx], push: push, groups: groups)
        }
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
        if z.count == 0 { return z }
        // Broadcast views of x and y over z's shape (stride 0 along broadcast axes).
        let bx = Tensor(buffer: x.buffer, offset: x.offset, shape: shape, strides: zip(xs, xst).map { $0 == 1 ? 0 : $1 }, dtype: .f32)
        let by = Tensor(buffer: y.buffer, offset: y.offset, shape: shape, strides: zip(ys, yst).map { $0 == 1 ? 0 : $1 }, dtype: .f32)
        try forEachPiece(op, [bx, by, z], shape.indices.map { SplitAxis(size: shape[$0], axes: [$0, $0, $0]) }) { t, _ in
            let flat = t[0].isDense && t[1].isDense && t[2].isDense
            let axes = MergedAxes(t[2].shape, [t[0].strides, t[1].strides, t[2].strides])
            let pad = 4 - axes.shape.count
            let s = Array(repeating: 1, count: pad) + axes.shape
            let sx = Array(repeating: 0, count: pad) + axes.strides[0], sy = Array(repeating: 0, count: pad) + axes.strides[1]
            let (wx, ox) = try bind(t[0], .read, op: op), (wy, oy) = try bind(t[1], .read, op: op), (wz, oz) = try bind(t[2], .write, op: op)
            guard t[2].count < fastDivideLimit else { throw OpError.unsupported(op, "\(t[2]): 2³¹ elements or more in one binding") }
            let dv = [s[1], s[2], s[3]].map { FastDivisor($0) }
            // Four outputs per float4 store on CPU devices (lavapipe pays per store and lane).
            let vec4 = variants.elementsPerInvocation > 1 && t[2].count % 4 == 0 && oz % 4 == 0
            let groups = elementGroups(vec4 ? t[2].count / 4 : t[2].count)
            // One push block for either kernel (the texel twin shares BinaryKernel.Push).
            let push = BinaryKernel.Push(n: t[2].count, d1: s[1], d2: s[2], d3: s[3], offX: ox, offY: oy, offZ: oz,
                                         sx0: sx[0], sx1: sx[1], sx2: sx[2], sx3: sx[3], sy0: sy[0], sy1: sy[1], sy2: sy[2], sy3: sy[3],
                                         alpha: alpha, beta: beta, m1: dv[0].magic, m2: dv[1].magic, m3: dv[2].magic,
                                         shifts: FastDivisor.packShifts(dv))
            // How a float4 of outputs reads each operand (binary.glsl): whole float4s where its four
            // are contiguous on the four-element grid, one element where it is constant along the row.
            let rowQuads = vec4 && (flat || s[3] % 4 == 0)
            func quad(_ st: [Int], _ off: Int) -> UInt32 {
                guard rowQuads else { return 0 }
                if flat { return off % 4 == 0 ? 1 : 0 }
                if st[3] == 0 { return 2 }
                return st[3] == 1 && off % 4 == 0 && st[0..<3].allSatisfy { $0 % 4 == 0 } ? 1 : 0
            }
            let (qx, qy) = (quad(sx, ox), quad(sy, oy))
            // Texel views: RGBA32UI for whole float4s (R32UI, reading elements, where that view
            // does not fit the buffer), else R32UI.
            func view(_ w: Binding, _ q: UInt32) -> (Binding, UInt32)? {
                if q == 1, let t = texelBinding(w, format: .rgba32ui) { return (t, 1) }
                return texelBinding(w, format: .r32ui).map { ($0, q == 1 ? 0 : q) }
            }
            if variants.texelTwins, let (tx, tqx) = view(wx, qx), let (ty, tqy) = view(wy, qy) {
                let k = try kernel(BinaryKernel.self, .texel, .init(localSizeX: variants.elementwiseLocal, OP: kind.rawValue, FLAT: flat, VEC4: vec4,
                                                                        AXES: UInt32(axes.shape.count), QUAD_X: tqx, QUAD_Y: tqy))
                try stream.dispatch(k, [tx, ty, wz], push: push, groups: groups)
                return
            }
            let k = try kernel(BinaryKernel.self, .base, .init(localSizeX: variants.elementwiseLocal, OP: kind.rawValue, FLAT: flat, VEC4: vec4,
                                                               AXES: UInt32(axes.shape.count), QUAD_X: qx, QUAD_Y: qy))
            try stream.dispatch(k, [wx, wy, wz], push: push, groups: groups)
        }
        return z
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
