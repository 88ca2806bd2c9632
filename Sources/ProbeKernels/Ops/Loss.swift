import VulkanCompute

/// Cross-entropy results for a batch.
public struct CrossEntropyResult {
    /// (rows,) per-sample loss (NaN for a label outside [0, C)).
    public let losses: Tensor
    /// (rows, C) gradient of `gradScale · Σ losses` with respect to the logits.
    public let dLogits: Tensor
    /// (rows,) i32: classes ranked above the label (top-k correct ⇔ rank < k; −1 for a bad label).
    public let ranks: Tensor
}

extension KernelContext {
    /// Cross-entropy over logits (rows, C) with int32 labels, its gradient and the label ranks, in
    /// one pass. `gradScale` 1/rows gives the gradient of the mean loss.
    public func crossEntropy(_ logits: Tensor, labels: Tensor, gradScale: Float) throws -> CrossEntropyResult {
        let op = "crossEntropy"
        try checkDevice(op, logits, labels); try requireContiguous(op, logits, labels); try requireF32(op, logits)
        guard labels.dtype == .i32 else { throw OpError.dtype(op, "labels \(labels) must be i32") }
        guard logits.rank == 2, labels.count == logits.shape[0] else { throw OpError.shape(op, "logits \(logits) must be (rows, C) with labels (rows,), got labels \(labels)") }
        let (rows, C) = (logits.shape[0], logits.shape[1])
        let losses = try empty([rows]), dLogits = try empty([rows, C]), ranks = try empty([rows], dtype: .i32)
        let (bx, ox) = try bind(logits, .read, op: op), (bl, ol) = try bind(labels, .read, op: op)
        let (bloss, oloss) = try bind(losses, .write, op: op), (bd, od) = try bind(dLogits, .write, op: op), (br, or) = try bind(ranks, .write, op: op)
        var p = Push()
        for n in [rows, C, ox, ol, oloss, od, or] { p.u(n) }
        p.f(gradScale)
        let k = try rowKernel("cross_entropy", bindings: 5, push: p.bytes, spec: [variants.rowLocal])
        try stream.dispatch(k, [bx, bl, bloss, bd, br], push: p.words, groups: (rowGroups(rows), 1, 1))
        return CrossEntropyResult(losses: losses, dLogits: dLogits, ranks: ranks)
    }
}
