import ProbeShaders
import VulkanCompute

extension KernelContext {
    /// The largest k values of each row of `values` (R, C) (any row stride, contiguous rows) and
    /// their indices, largest first (equal values: smaller index first), into `outValues` (R, k)
    /// and `outIndices` (R, k) i32 (views allowed, e.g. a column block of a wider matrix).
    /// Indices are the column plus `indexBase`, or with `indices` (R, C) i32 the entry there.
    /// k ≤ 256 and ≤ C.
    public func topK(_ values: Tensor, indices: Tensor? = nil, k: Int, indexBase: Int = 0, into outValues: Tensor, outIndices: Tensor) throws {
        let op = "topK"
        try checkDevice(op, values, outValues, outIndices)
        guard values.rank == 2, values.dtype == .f32, values.strides[1] == 1 else { throw OpError.shape(op, "values \(values): (R, C) f32 with contiguous rows") }
        let (R, C) = (values.shape[0], values.shape[1])
        guard k >= 1, k <= 256, k <= C else { throw OpError.shape(op, "k = \(k): expected 1 to min(256, \(C))") }
        guard outValues.shape == [R, k], outIndices.shape == [R, k], outValues.dtype == .f32, outIndices.dtype == .i32,
              outValues.strides[1] == 1, outIndices.strides[1] == 1 else {
            throw OpError.shape(op, "outputs \(outValues), \(outIndices): (\(R), \(k)) f32 and i32 with contiguous rows")
        }
        if let indices {
            guard indices.shape == [R, C], indices.dtype == .i32, indices.strides[1] == 1 else { throw OpError.shape(op, "indices \(indices): (\(R), \(C)) i32") }
        }
        guard indexBase >= 0, indexBase + C <= Int(Int32.max) else { throw OpError.shape(op, "indexBase \(indexBase) + \(C) columns exceed Int32") }
        if R == 0 { return }
        let local: UInt32 = variants.cpuShaped ? 8 : 128
        let kern = try kernel(TopkKernel.self, .base, .init(localSizeX: local, HAS_INDEX: indices != nil))
        var operands = [values, outValues, outIndices]
        if let indices { operands.append(indices) }
        try forEachPiece(op, operands, [SplitAxis(size: R, axes: operands.map { _ in 0 })]) { t, _ in
            let (bv, ov) = try bind(t[0], .read, op: op)
            let (bi, oi) = indices == nil ? (try scratchBinding(), 0) : try bind(t[3], .read, op: op)
            let (bov, oov) = try bind(t[1], .write, op: op), (boi, ooi) = try bind(t[2], .write, op: op)
            let rows = t[0].shape[0]
            let push = TopkKernel.Push(rows: rows, cols: C, k: k, offV: ov, strideV: t[0].strides[0], offI: oi,
                                       strideI: indices == nil ? 0 : t[3].strides[0], offOV: oov, strideOV: t[1].strides[0],
                                       offOI: ooi, strideOI: t[2].strides[0], indexBase: indexBase)
            let x = min(rows, 65535)
            try stream.dispatch(kern, [bv, bi, bov, boi], push: push, groups: (x, (rows + x - 1) / x, 1))
        }
    }
}
