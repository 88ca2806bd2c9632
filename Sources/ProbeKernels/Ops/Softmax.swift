import ProbeShaders
import VulkanCompute

extension KernelContext {
    /// Rows of a tensor over its last axis as a (rows, cols) view with a row stride, requiring the
    /// leading axes to collapse into one strided axis and the last axis to be contiguous.
    func rows(_ t: Tensor, op: String) throws -> Tensor {
        guard t.rank >= 1, t.strides[t.rank - 1] == 1 || t.shape[t.rank - 1] == 1 else {
            throw OpError.shape(op, "\(t): the last axis must be contiguous")
        }
        let cols = t.shape[t.rank - 1]
        let lead = Array(0..<(t.rank - 1))
        guard let s = collapsedStride(t, lead) else { throw OpError.shape(op, "\(t): leading axes must collapse; copy it contiguous first") }
        return Tensor(buffer: t.buffer, offset: t.offset, shape: [lead.map { t.shape[$0] }.reduce(1, *), cols],
                      strides: [s == 0 ? cols : s, 1], dtype: t.dtype)
    }

    /// Workgroups of a row kernel: `rowsPerWorkgroup` rows each (grid-stride, also beyond the
    /// dispatch limit).
    func rowGroups(_ rows: Int) -> (Int, Int, Int) {
        (max(1, min((rows + variants.rowsPerWorkgroup - 1) / variants.rowsPerWorkgroup, 65535)), 1, 1)
    }

    /// `softmax(scale · x + mask)` over the last axis. `mask`: (maskRows, cols), broadcast over rows
    /// (row r uses mask row r mod maskRows).
    public func softmax(_ x: Tensor, scale: Float = 1, mask: Tensor? = nil, into out: Tensor? = nil) throws -> Tensor {
        let op = "softmax"
        let y = try out ?? empty(x.shape)
        try checkDevice(op, x, y); try requireF32(op, x, y)
        guard y.shape == x.shape else { throw OpError.shape(op, "x \(x), y \(y)") }
        let xv = try rows(x, op: op), yv = try rows(y, op: op)
        let (R, cols) = (xv.shape[0], xv.shape[1])
        var maskRows = 1
        if let mask {
            try checkDevice(op, mask); try requireContiguous(op, mask); try requireF32(op, mask)
            guard mask.shape.last == cols, R % max(1, mask.count / cols) == 0 else {
                throw OpError.shape(op, "mask \(mask) does not broadcast over the rows of \(x)")
            }
            maskRows = mask.count / cols
        }
        let spec = SoftmaxKernel.Spec(localSizeX: variants.rowLocal, HAS_MASK: mask != nil)
        try forEachPiece(op, [xv, yv], [SplitAxis(size: R, axes: [0, 0])]) { t, ranges in
            let (bx, ox) = try bind(t[0], .read, op: op), (by, oy) = try bind(t[1], .write, op: op)
            let (bm, om) = try bind(mask, .read, op: op, orPlaceholder: bx)
            let push = SoftmaxKernel.Push(rows: t[0].shape[0], cols: cols, offX: ox, sX: t[0].strides[0], offM: om, maskRows: maskRows,
                                          maskRowOffset: ranges[0].lowerBound % maskRows, offY: oy, sY: t[1].strides[0], scale: scale)
            // Rows held in registers as float4s (softmax.glsl's IN_REGISTERS) where they start on the
            // four-element grid and fit eight quads per lane (rows up to 256 at 8 lanes).
            let lanes = Int(variants.rowLocal)
            let quads = (cols + 4 * lanes - 1) / (4 * lanes)
            if variants.texelTwins, variants.rowSubgroup, quads <= 8, [ox, oy, t[0].strides[0], t[1].strides[0]].allSatisfy({ $0 % 4 == 0 }),
               let tx = texelBinding(bx, format: .rgba32ui) {
                var quadSpec = spec
                quadSpec.IN_REGISTERS = 1
                quadSpec.QUADS = UInt32(quads)
                let k = try kernel(SoftmaxKernel.self, .texel_sg, quadSpec)
                try stream.dispatch(k, [tx, bm, by], push: push, groups: rowGroups(t[0].shape[0]))
                return
            }
            // x as a texel buffer on CPU devices (as the GEMM, copies and reductions).
            if variants.texelTwins, let tx = texelBinding(bx, format: .r32ui) {
                let k = try kernel(SoftmaxKernel.self, variants.rowSubgroup ? .texel_sg : .texel, spec)
                try stream.dispatch(k, [tx, bm, by], push: push, groups: rowGroups(t[0].shape[0]))
                return
            }
            let k = try kernel(SoftmaxKernel.self, variants.rowSubgroup ? .sg : .base, spec)
            try stream.dispatch(k, [bx, bm, by], push: push, groups: rowGroups(t[0].shape[0]))
        }
        return y
    }

    /// `dx (+)= scale · y ⊙ (dy − Σ dy ⊙ y)` over the last axis, given the softmax output y.
    public func softmaxBackward(_ y: Tensor, _ dy: Tensor, scale: Float = 1, into dx: Tensor, accumulate: Bool = false) throws {
        let op = "softmaxBackward"
        try checkDevice(op, y, dy, dx); try requireF32(op, y, dy, dx)
        guard y.shape == dy.shape, y.shape == dx.shape else { throw OpError.shape(op, "y \(y), dy \(dy), dx \(dx)") }
        let yv = try rows(y, op: op), dyv = try rows(dy, op: op), dxv = try rows(dx, op: op)
        let spec = SoftmaxBackwardKernel.Spec(localSizeX: variants.rowLocal)
        try forEachPiece(op, [yv, dyv, dxv], [SplitAxis(size: yv.shape[0], axes: [0, 0, 0])]) { t, _ in
            let (by, oy) = try bind(t[0], .read, op: op), (bdy, ody) = try bind(t[1], .read, op: op)
            let (bdx, odx) = try bind(t[2], accumulate ? .readWrite : .write, op: op)
            let push = SoftmaxBackwardKernel.Push(rows: t[0].shape[0], cols: t[0].shape[1], offY: oy, sY: t[0].strides[0], offDY: ody,
                                                  sDY: t[1].strides[0], offDX: odx, sDX: t[2].strides[0], scale: scale, accumulate: accumulate ? 1 : 0)
            // y and dy as texel buffers on CPU devices (as the forward).
            if variants.texelTwins, let ty = texelBinding(by, format: .r32ui), let tdy = texelBinding(bdy, format: .r32ui) {
                let k = try kernel(SoftmaxBackwardKernel.self, variants.rowSubgroup ? .texel_sg : .texel, spec)
                try stream.dispatch(k, [ty, tdy, bdx], push: push, groups: rowGroups(t[0].shape[0]))
                return
            }
            let k = try kernel(SoftmaxBackwardKernel.self, variants.rowSubgroup ? .sg : .base, spec)
            try stream.dispatch(k, [by, bdy, bdx], push: push, groups: rowGroups(t[0].shape[0]))
        }
    }
}
