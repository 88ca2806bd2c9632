import VulkanCompute

/// Sums per-channel batch statistics over every process of a data-parallel group (SyncBatchNorm):
/// with one set on a `KernelContext`, BatchNorm in training mode takes its mean, variance and
/// backward sums over the global batch, so N processes with B/N samples each compute what one
/// process computes with B (up to the order of the fp32 sums).
public protocol BatchStatisticsReducer: AnyObject {
    /// Replaces `values` by their element-wise sum over the group (every member calls it with the
    /// same count, in the same order).
    func allReduceSum(_ values: inout [Double]) throws
}

extension KernelContext {
    /// Finishes the stream, sums the floats of `t` (contiguous f32) at `indices` and `extra` over
    /// the group, writes those sums back into `t` and returns the summed `extra`.
    func reduceAcrossGroup(_ reducer: BatchStatisticsReducer, _ t: Tensor, indices: [Int], extra: [Double]) throws -> [Double] {
        var host = try read(t)
        var values = indices.map { Double(host[$0]) } + extra
        try reducer.allReduceSum(&values)
        for (k, i) in indices.enumerated() { host[i] = Float(values[k]) }
        try host.withUnsafeBytes { try device.upload($0, to: t.buffer, offset: t.offset * 4) }
        return Array(values[indices.count...])
    }
}
