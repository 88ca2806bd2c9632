import Foundation
import ProbeTestSupport
import Testing
@testable import ProbeKernels

@Suite struct LossTests {
    @Test(arguments: rowShapes)
    func crossEntropyLossGradientAndRanks(tpr: UInt32) throws {
        let ctx = try makeContext(variants: rowVariant(tpr))
        for (rows, C) in [(1, 1), (7, 10), (3, 197), (33, 1000)] {
            var logits = randomValues(rows * C, seed: UInt64(C), lo: -3, hi: 3)
            if C > 3 { logits[1] = logits[2] }   // a tie, broken by index
            let labels = (0..<rows).map { ($0 * 7 + 2) % C }
            let r = try ctx.crossEntropy(try upload(ctx, logits, [rows, C]), labels: try ctx.tensor(labels.map(Int32.init), [rows]), gradScale: 1 / Float(rows))
            let (loss, grad, ranks) = Reference.crossEntropy(logits, C: C, labels: labels, gradScale: 1 / Double(rows))
            try expectClose(ctx, r.losses, loss, "cross-entropy losses \(rows)x\(C)")
            try expectClose(ctx, r.dLogits, grad, "cross-entropy gradient \(rows)x\(C)")
            #expect(try ctx.readInt32(r.ranks).map(Int.init) == ranks)
        }
        // A label outside [0, C) is reported, not silently used.
        let bad = try ctx.crossEntropy(try upload(ctx, [0, 1, 2], [1, 3]), labels: try ctx.tensor([Int32(3)], [1]), gradScale: 1)
        #expect(try ctx.read(bad.losses)[0].isNaN)
        #expect(try ctx.readInt32(bad.ranks) == [-1])
        expectNoValidationMessages(ctx)
    }
}
