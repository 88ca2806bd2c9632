import Foundation
import ProbeTestSupport
import Testing
@testable import ProbeKernels

@Suite struct OptimizerTests {
    @Test func optimizerStepsMatchReference() throws {
        let ctx = try makeContext()
        for n in [1, 7, 1031] {
            let p0 = randomValues(n, seed: 1), m0 = randomValues(n, seed: 4)
            let grads = (0..<3).map { randomValues(n, seed: 10 + UInt64($0)) }
            // SGD with momentum and weight decay, three steps.
            do {
                var p = p0, m = [Double](repeating: 0, count: n)
                let tp = try upload(ctx, p0, [n]), tm = try upload(ctx, m, [n])
                for g in grads {
                    try ctx.optimizerStep(.sgd(lr: 0.1, momentum: 0.9, weightDecay: 0.01), param: tp, grad: try upload(ctx, g, [n]), state1: tm)
                    Reference.sgd(&p, g, &m, lr: 0.1, momentum: 0.9, wd: 0.01)
                }
                try expectClose(ctx, tp, p, "SGD n=\(n)")
                try expectClose(ctx, tm, m, "SGD momentum n=\(n)")
            }
            // LARS: scaled (weights) and excluded (biases); zero parameters take ratio 1.
            for excluded in [false, true] {
                for start in [p0, [Double](repeating: 0, count: n)] {
                    var p = start, m = m0
                    let tp = try upload(ctx, start, [n]), tm = try upload(ctx, m0, [n])
                    for g in grads {
                        try ctx.optimizerStep(.lars(lr: 0.5, momentum: 0.9, weightDecay: 0.05, trust: 0.001, excluded: excluded),
                                              param: tp, grad: try upload(ctx, g, [n]), state1: tm)
                        Reference.lars(&p, g, &m, lr: 0.5, momentum: 0.9, wd: 0.05, trust: 0.001, excluded: excluded)
                    }
                    try expectClose(ctx, tp, p, "LARS n=\(n) excluded \(excluded)")
                    try expectClose(ctx, tm, m, "LARS momentum n=\(n)")
                }
            }
            // AdamW.
            do {
                var p = p0, m = [Double](repeating: 0, count: n), v = m
                let tp = try upload(ctx, p0, [n]), tm = try upload(ctx, m, [n]), tv = try upload(ctx, v, [n])
                for (t, g) in grads.enumerated() {
                    try ctx.optimizerStep(.adamw(lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.05, step: t + 1),
                                          param: tp, grad: try upload(ctx, g, [n]), state1: tm, state2: tv)
                    Reference.adamw(&p, g, &m, &v, lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, wd: 0.05, step: t + 1)
                }
                try expectClose(ctx, tp, p, "AdamW n=\(n)")
            }
        }
        expectNoValidationMessages(ctx)
    }
}
