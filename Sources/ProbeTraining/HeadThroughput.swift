import ProbeAutodiff
import ProbeHeads
import ProbeKernels
import VulkanCompute

/// One row of the heads table.
public struct HeadReport: Codable, Sendable {
    public var head: String
    public var pooling_params: Int
    public var total_params: Int
    public var macs_forward: Int
    public var macs_forward_backward: Int
    public var images_per_s: Double?
    public var batch: Int?
    public var device: String?
}

/// Measures a probe head's training step (pooling → BN → Linear, cross-entropy, backward) on the
/// device: median over `repeats` after one warm-up, timed with GPU timestamps.
public func measureTrainingStep(_ layout: ProbeHeadLayout, ctx: KernelContext, batch: Int, repeats: Int = 3,
                                precision: HeadPrecision = .fp32) throws -> Double {
    let step = try trainingStep(layout, ctx: ctx, batch: batch, precision: precision)
    var times: [Double] = []
    for i in 0...repeats {
        try ctx.stream.beginRegion("step")
        try step()
        try ctx.stream.endRegion("step")
        try ctx.finish()
        if i > 0 { times.append(ctx.stream.nanoseconds("step") ?? .nan) }
    }
    times.sort()
    return Double(batch) / (times[times.count / 2] / 1e9)
}

/// One training step of a head on random tokens (recorded, not finished): forward, loss, backward.
/// `tokens` (B, N, D) may be shared by several heads' steps (one upload for all); `precision` is
/// `--head-precision`'s (fp16 without its loss scaling, whose cost is one read per step).
public func trainingStep(_ layout: ProbeHeadLayout, ctx: KernelContext, batch: Int, tokens: Tensor? = nil,
                         precision: HeadPrecision = .fp32) throws -> () throws -> Void {
    let gpu = GPUBackend(ctx)
    gpu.gemmInputs = precision.gemmInputs
    let state = try ProbeHeadState(layout: layout, backend: gpu, seed: 1)
    let o = layout.pooling.options
    var rng = InitRNG(seed: 3)
    let x = try tokens ?? gpu.constant(rng.values(for: ParameterSpec("x", [batch, o.tokens, o.dim], .normal(std: 1))), [batch, o.tokens, o.dim])
    let labels = try ctx.tensor((0..<batch).map { Int32($0 % layout.classes) }, [batch])
    return {
        let g = Graph(gpu, training: true)
        let (logits, _, _, _) = try state.forward(g, tokens: g.input(x))
        let ce = try ctx.crossEntropy(logits.value, labels: labels, gradScale: 1 / Float(batch))
        try g.backward(logits, grad: ce.dLogits)
    }
}

extension ProbeHeadLayout {
    public func report(name: String) -> HeadReport {
        HeadReport(head: name, pooling_params: poolingParameterCount, total_params: totalParameterCount,
                   macs_forward: forwardMACs, macs_forward_backward: 3 * forwardMACs)
    }
}
