import ProbeShaders
import VulkanCompute

/// A copy that is a (batched) transpose in 4×4 blocks: the source contiguous along one axis `r`,
/// the destination along another `c`, every other axis merged into one batch axis, both of
/// `r` and `c` multiples of 4 long, and offsets and the remaining strides multiples of 4 (in
/// elements), so that both sides move four elements per access.
struct BlockTranspose {
    let batch: Int, rows: Int, cols: Int
    /// In elements: offsets, the source's batch and column strides, the destination's batch and row strides.
    let offIn: Int, sInB: Int, sInC: Int
    let offOut: Int, sOutB: Int, sOutR: Int

    init?(_ source: Tensor, _ destination: Tensor) {
        guard source.shape == destination.shape, source.dtype.size == destination.dtype.size else { return nil }
        let axes = source.shape.indices.filter { source.shape[$0] > 1 }
        guard let r = axes.first(where: { source.strides[$0] == 1 }), let c = axes.first(where: { destination.strides[$0] == 1 }),
              r != c else { return nil }
        // The other axes, in order, must each fold into the next (a row-major batch) on both sides.
        let others = axes.filter { $0 != r && $0 != c }
        for (x, y) in zip(others, others.dropFirst()) {
            for t in [source, destination] where t.strides[x] != t.strides[y] * t.shape[y] { return nil }
        }
        let last = others.last
        batch = others.map { source.shape[$0] }.reduce(1, *)
        (rows, cols) = (source.shape[r], source.shape[c])
        (offIn, sInB, sInC) = (source.offset, last.map { source.strides[$0] } ?? 0, source.strides[c])
        (offOut, sOutB, sOutR) = (destination.offset, last.map { destination.strides[$0] } ?? 0, destination.strides[r])
        guard rows % 4 == 0, cols % 4 == 0, [offIn, sInB, sInC, offOut, sOutB, sOutR].allSatisfy({ $0 % 4 == 0 }),
              batch * rows * cols / 16 < fastDivideLimit else { return nil }
    }
}

extension KernelContext {
    /// Copies `source` into `destination` through the 4×4-block transpose when the layouts allow
    /// it on a CPU device (the texel paths) and both fit one binding; false where they do not.
    func blockTranspose(_ source: Tensor, into destination: Tensor) throws -> Bool {
        let op = "copy"
        guard variants.gemmTexel, source.dtype == destination.dtype, fitsBinding(source), fitsBinding(destination),
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
