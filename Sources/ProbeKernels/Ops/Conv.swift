import ProbeShaders
import VulkanCompute

extension KernelContext {
    /// Direct 2-D convolution, stride 1, zero padding `padding`: x (B, Cin, H, W), w (Cout, Cin, KH, KW)
    /// → (B, Cout, H + 2p − KH + 1, W + 2p − KW + 1). For the small kernels of the heads (CBAM's 7×7);
    /// 1×1 convolutions are GEMMs.
    public func conv2d(_ x: Tensor, _ w: Tensor, padding: Int) throws -> Tensor {
        let op = "conv2d"
        let (B, _, _, _, Cout, _, _, Ho, Wo) = try convShapes(x, w, padding, op: op)
        let y = try empty([B, Cout, Ho, Wo])
        try convDispatch(mode: 0, a: x, w: w, out: y, padding: padding, accumulate: false, op: op)
        return y
    }

    /// Convolution gradients: `dx (+)=` and/or `dw (+)=` from dy.
    public func conv2dBackward(_ x: Tensor, _ w: Tensor, padding: Int, _ dy: Tensor, dx: Tensor?, dw: Tensor?, accumulate: Bool = false) throws {
        let op = "conv2dBackward"
        let (B, _, _, _, Cout, _, _, Ho, Wo) = try convShapes(x, w, padding, op: op)
        try checkDevice(op, dy); try requireContiguous(op, dy)
        guard dy.shape == [B, Cout, Ho, Wo] else { throw OpError.shape(op, "dy \(dy) for output (\(B), \(Cout), \(Ho), \(Wo))") }
        if let dx {
            guard dx.shape == x.shape else { throw OpError.shape(op, "dx \(dx), x \(x)") }
            try convDispatch(mode: 1, a: dy, w: w, out: dx, padding: padding, accumulate: accumulate, op: op, batchOf: x)
        }
        if let dw {
            guard dw.shape == w.shape else { throw OpError.shape(op, "dw \(dw), w \(w)") }
            try convDispatch(mode: 2, a: x, w: dy, out: dw, padding: padding, accumulate: accumulate, op: op, batchOf: x)
        }
    }

    private func convShapes(_ x: Tensor, _ w: Tensor, _ padding: Int, op: String) throws -> (Int, Int, Int, Int, Int, Int, Int, Int, Int) {
        try checkDevice(op, x, w); try requireContiguous(op, x, w); try requireF32(op, x, w)
        guard x.rank == 4, w.rank == 4, x.shape[1] == w.shape[1], padding >= 0 else {
            throw OpError.shape(op, "x \(x) must be (B, Cin, H, W) and w \(w) (Cout, Cin, KH, KW), padding \(padding) ≥ 0")
        }
        let Ho = x.shape[2] + 2 * padding - w.shape[2] + 1, Wo = x.shape[3] + 2 * padding - w.shape[3] + 1
        guard Ho > 0, Wo > 0 else { throw OpError.shape(op, "kernel \(w) larger than padded input \(x)") }
        return (x.shape[0], x.shape[1], x.shape[2], x.shape[3], w.shape[0], w.shape[2], w.shape[3], Ho, Wo)
    }

    /// MODE 0: a = x, w = weight, out = y; 1: a = dy, w = weight, out = dx; 2: a = x, w = dy, out = dw.
    /// Pieces of the batch (out = dw accumulates over them).
    private func convDispatch(mode: UInt32, a: Tensor, w: Tensor, out: Tensor, padding: Int, accumulate: Bool, op: String,
                              batchOf x: Tensor? = nil) throws {
        try checkDevice(op, out); try requireContiguous(op, out)
        let x = x ?? a
        let weightShape = mode == 2 ? out.shape : w.shape
        let k = try kernel(Conv2dKernel.self, .base, .init(localSizeX: variants.elementwiseLocal, MODE: mode))
        let outBatch: Int? = mode == 2 ? nil : 0, wBatch: Int? = mode == 2 ? 0 : nil
        try forEachPiece(op, [a, w, out], [SplitAxis(size: x.shape[0], axes: [0, wBatch, outBatch])]) { t, r in
            let acc = accumulate || (mode == 2 && r[0].lowerBound > 0)
            let (ba, oa) = try bind(t[0], .read, op: op), (bw, ow) = try bind(t[1], .read, op: op)
            let (bo, oo) = try bind(t[2], acc ? .readWrite : .write, op: op)
            let push = Conv2dKernel.Push(B: r[0].count, Cin: x.shape[1], H: x.shape[2], W: x.shape[3], Cout: weightShape[0], KH: weightShape[2],
                                         KW: weightShape[3], PAD: padding, offA: oa, offW: ow, offO: oo, accumulate: acc ? 1 : 0)
            try stream.dispatch(k, [ba, bw, bo], push: push, groups: elementGroups(t[2].count))
        }
    }
}
