import ProbeOps

/// The primitive operations heads are built from, each forward and backward. Two implementations:
/// `GPUBackend` (Vulkan kernels) and `CPUBackend` (Double, the reference), so one head definition
/// runs on the device and, for gradient checks, on the CPU.
public protocol Backend: AnyObject {
    associatedtype Value
    /// Where `amax` keeps its indices (host array or device tensor) for the backward.
    associatedtype ArgMax

    func shape(_ x: Value) -> [Int]
    func constant(_ values: [Float], _ shape: [Int]) throws -> Value
    func zeros(_ shape: [Int]) throws -> Value
    func toHost(_ x: Value) throws -> [Float]

    // Layout (views where the backend can; copies otherwise).
    func reshape(_ x: Value, _ shape: [Int]) throws -> Value
    func permute(_ x: Value, _ order: [Int]) throws -> Value
    func slice(_ x: Value, axis: Int, _ range: Range<Int>) throws -> Value
    func concat(_ parts: [Value], axis: Int) throws -> Value
    /// Broadcast to `shape` (size-1 axes repeated), materialised.
    func expand(_ x: Value, _ shape: [Int]) throws -> Value
    /// A zero tensor of `shape` with `x` written into `range` of `axis` (the gradient of a slice).
    func padSlice(_ x: Value, shape: [Int], axis: Int, _ range: Range<Int>) throws -> Value
    /// `target` with `x` added into `range` of `axis`; may update `target`'s storage in place (the
    /// caller owns it: nothing else reads it).
    func addSlice(_ target: Value, _ x: Value, axis: Int, _ range: Range<Int>) throws -> Value

    // Arithmetic.
    /// `op(A) · op(B)` over the last two axes; leading axes batch (a rank-2 operand is shared).
    func matmul(_ a: Value, _ b: Value, transA: Bool, transB: Bool, alpha: Float) throws -> Value
    /// `x Wᵀ + b` over the last axis of x (PyTorch Linear).
    func linear(_ x: Value, _ w: Value, _ bias: Value?) throws -> Value
    func binary(_ a: Value, _ b: Value, _ op: BinaryOp) throws -> Value
    func scale(_ x: Value, _ s: Float) throws -> Value
    func unary(_ x: Value, _ act: Activation) throws -> Value
    func unaryBackward(_ x: Value, _ dy: Value, _ act: Activation) throws -> Value
    /// Sums down to `shape` (the gradient of broadcasting).
    func sumTo(_ x: Value, _ shape: [Int]) throws -> Value
    func reduce(_ x: Value, axis: Int, _ op: ReduceOp) throws -> Value
    /// amax over `axis` with the argmax (for the backward).
    func amax(_ x: Value, axis: Int) throws -> (Value, ArgMax)
    func amaxBackward(_ dy: Value, _ arg: ArgMax, shape: [Int], axis: Int) throws -> Value

    // Normalisation and attention.
    func softmax(_ x: Value, scale: Float) throws -> Value
    func softmaxBackward(_ y: Value, _ dy: Value, scale: Float) throws -> Value
    func layerNorm(_ x: Value, _ gamma: Value?, _ beta: Value?, eps: Float) throws -> (Value, Value)
    /// dx only when `wantInput`, dγ and dβ only when `wantParams` (frozen tokens need no dx).
    func layerNormBackward(_ x: Value, _ gamma: Value?, _ stats: Value, _ dy: Value, wantInput: Bool, wantParams: Bool) throws -> (Value?, Value?, Value?)
    /// BatchNorm over all axes but `channelAxis`; updates the running buffers (in place) when training.
    func batchNorm(_ x: Value, channelAxis: Int, _ gamma: Value?, _ beta: Value?, runningMean: Value, runningVar: Value,
                   training: Bool, momentum: Float, eps: Float) throws -> (Value, Value)
    func batchNormBackward(_ x: Value, channelAxis: Int, _ gamma: Value?, _ stats: Value, runningVar: Value,
                           training: Bool, eps: Float, _ dy: Value) throws -> (Value, Value?, Value?)
    /// (B, H, Lq, D) × (B, H, Lk, D) × (B, H, Lk, Dv) → output and probabilities.
    func attention(_ q: Value, _ k: Value, _ v: Value, scale: Float) throws -> (Value, Value)
    /// The output alone (see the extension's default).
    func attentionOutput(_ q: Value, _ k: Value, _ v: Value, scale: Float) throws -> Value
    /// Lets the device start on what was recorded so far; storage no longer referenced is then
    /// reused once that work is done (a device backend holds everything it recorded until then).
    func flush() throws
    /// The gradients `want` names (q, k, v), nil for the others.
    func attentionBackward(_ q: Value, _ k: Value, _ v: Value, probs: Value, scale: Float, _ dOut: Value,
                           want: GradientsWanted) throws -> (Value?, Value?, Value?)
    /// A rotary embedding of x (B, T, H, hd) by (T, hd) tables, as a new tensor: pairs (2j, 2j+1),
    /// or (j, j + hd/2) with `half`, rotated as timm's `apply_rot_embed`; `inverse` rotates back
    /// (the transpose: its backward).
    func rope(_ x: Value, cos: Value, sin: Value, half: Bool, inverse: Bool) throws -> Value
    func conv2d(_ x: Value, _ w: Value, padding: Int) throws -> Value
    /// dx only when `wantInput`, dw only when `wantWeight`.
    func conv2dBackward(_ x: Value, _ w: Value, padding: Int, _ dy: Value, wantInput: Bool, wantWeight: Bool) throws -> (Value?, Value?)
    /// x / max(‖x‖₂, eps) over the last axis, and its backward.
    func l2Normalize(_ x: Value, eps: Float) throws -> Value
    func l2NormalizeBackward(_ x: Value, _ dy: Value, eps: Float) throws -> Value
}

extension Backend {
    /// The attention's output alone; a backend with a fused kernel that never stores the
    /// probabilities overrides it.
    public func attentionOutput(_ q: Value, _ k: Value, _ v: Value, scale: Float) throws -> Value { try attention(q, k, v, scale: scale).0 }
    public func flush() throws {}
}

/// Which of an op's three inputs need their gradient: the tape asks only for those (a frozen
/// backbone's tokens need none, so their gradients are never computed).
public struct GradientsWanted: Sendable, Equatable {
    public var first: Bool, second: Bool, third: Bool
    public init(_ first: Bool, _ second: Bool, _ third: Bool) { self.first = first; self.second = second; self.third = third }
}
