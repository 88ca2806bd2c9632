import ProbeShaders
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
        let k = try kernel(CrossEntropyKernel.self, variants.rowSubgroup ? .sg : .base, .init(localSizeX: variants.rowLocal))
        try forEachPiece(op, [logits, labels, losses, dLogits, ranks], [SplitAxis(size: rows, axes: [0, 0, 0, 0, 0])]) { t, _ in
            let (bx, ox) = try bind(t[0], .read, op: op), (bl, ol) = try bind(t[1], .read, op: op)
            let (bloss, oloss) = try bind(t[2], .write, op: op), (bd, od) = try bind(t[3], .write, op: op), (br, or) = try bind(t[4], .write, op: op)
            let push = CrossEntropyKernel.Push(rows: t[0].shape[0], C: C, offX: ox, offL: ol, offLoss: oloss, offDX: od, offR: or, gradScale: gradScale)
            try stream.dispatch(k, [bx, bl, bloss, bd, br], push: push, groups: rowGroups(t[0].shape[0]))
        }
        return CrossEntropyResult(losses: losses, dLogits: dLogits, ranks: ranks)
    }
}
