import Foundation
import ProbeHeads
import ProbeKernels
import ProbeTestSupport
import Testing
@testable import ProbeTraining

/// The backbone is frozen: a head's training step computes no gradient of the tokens. esimpool
/// (LayerNorm of the tokens as keys, the tokens themselves as values, 12 heads) needs only its
/// LayerNorm's parameter gradients: no dx kernel of that LayerNorm runs, and the head split of
/// the keys' gradient and the merge of the output reuse the attention's layout instead of copying
/// token-sized tensors.
@Suite struct FrozenTokenGradientTests {
    @Test func esimpoolStepComputesNoTokenGradient() throws {
        let ctx = try makeContext()
        let (B, N, D) = (3, 9, 48)
        let pooling = try Heads.pooling("esimpool", HeadOptions(dim: D, tokens: N, queries: 4, heads: 4, classes: 5))
        let step = try trainingStep(ProbeHeadLayout(pooling: pooling, classes: 5), ctx: ctx, batch: B)
        try step(); try ctx.finish()
        let report = try ctx.profile { try step() }
        let kernels = report.rows.map(\.kernel)
        #expect(kernels.contains("layernorm_param_grad"), "\(kernels)")
        #expect(!kernels.contains { $0.hasPrefix("layernorm_backward") }, "a LayerNorm computed dx of the frozen tokens: \(kernels)")
        // Token-sized: (B, N, D), or split into its 12 heads either way round.
        let tokenShapes = ["\(B)×\(N)×\(D)", "\(B)×\(N)×12×\(D / 12)", "\(B)×12×\(N)×\(D / 12)"]
        let tokenCopies = report.rows.filter { row in row.kernel.hasPrefix("copy") && tokenShapes.contains { row.op.contains($0) } }
        #expect(tokenCopies.isEmpty, "token-sized copies: \(tokenCopies.map(\.op))")
        expectNoValidationMessages(ctx)
    }
}
