import ProbeShaders
import VulkanCompute

/// A copy that is a (batched) transpose in 4×4 blocks: after merging (`MergedAxes`), the source
/// contiguous along one axis `r`, the destination along another `c`, at most one batch axis left,
/// both of `r` and `c` multiples of 4 long, and offsets and the remaining strides multiples of 4
/// (in elements), so that both sides move four elements per access.
struct BlockTranspose {
    let batch: Int, rows: Int, cols: Int
    /// In elements: offsets, the source's batch and column strides, the destination's batch and row strides.
    let offIn: Int, sInB: Int, sInC: Int
    let offOut: Int, sOutB: Int, sOutR: Int

    init?(_ source: Tensor, _ destination: Tensor) {
        guard source.shape == destination.shape, source.dtype.size == destination.dtype.size else { return nil }
        let axes = MergedAxes(source.shape, [source.strides, destination.strides])
        let (src, dst) = (axes.strides[0], axes.strides[1])
        guard let r = src.firstIndex(of: 1), let c = dst.firstIndex(of: 1), r != c, axes.shape.count <= 3 else { return nil }
        let b = axes.shape.indices.first { $0 != r && $0 != c }
        batch = b.map { axes.shape[$0] } ?? 1
        (rows, cols) = (axes.shape[r], axes.shape[c])
        (offIn, sInB, sInC) = (source.offset, b.map { src[$0] } ?? 0, src[c])
        (offOut, sOutB, sOutR) = (destination.offset, b.map { dst[$0] } ?? 0, dst[r])
        guard rows % 4 == 0, cols % 4 == 0, [offIn, sInB, sInC, offOut, sOutB, sOutR].allSatisfy({ $0 % 4 == 0 }),
              batch * rows * cols / 16 < fastDivideLimit else { return nil }
    }
}

extension KernelContext {
    /// Copies `source` into `destination` through the 4×4-block transpose when the layouts allow
    /// it on a CPU device (the texel paths) and both fit one binding; false where they do not.
    func blockTranspose(_ source: Tensor, into destination: Tensor) throws -> Bool {
        let op = "copy"
        guard variants.texelTwins, source.dtype == destination.dtype, fitsBinding(source), fitsBinding(destination),
              let plan = BlockTranspose(source, destination) else { return false }
        let words16 = source.dtype.size == 2
        let (bs, os) = try bind(source, .read, op: op), (bd, od) = try bind(destination, .write, op: op)
        guard os % 4 == 0, od % 4 == 0, let ts = texelBinding(bs, format: words16 ? .rgba16ui : .rgba32ui) else { return false }
        let cq = FastDivisor(plan.cols / 4), rq = FastDivisor(plan.rows / 4)
        let blocks = plan.batch * (plan.rows / 4) * (plan.cols / 4)
        let push = Transpose4Kernel.Push(blocks: blocks, offIn: os / 4, offOut: od / 4, sInB: plan.sInB / 4, sInC: plan.sInC / 4,
                                         sOutB: plan.sOutB / 4, sOutR: plan.sOutR / 4, cq: cq.divisor, magicC: cq.magic,
                                         rq: rq.divisor, magicR: rq.magic, shifts: cq.shift | rq.shift << 5)
        let k = try kernel(Transpose4Kernel.self, words16 ? .words16 : .base, .init(localSizeX: variants.elementwiseLocal))
        try stream.dispatch(k, [ts, bd], push: push, groups: elementGroups(blocks))
        return true
    }
}
