import Foundation
import ProbeTestSupport
import Testing
@testable import ProbeKernels

@Suite struct NormsTests {
    @Test(arguments: rowShapes)
    func layerNormForwardBackward(tpr: UInt32) throws {
        let ctx = try makeContext(variants: rowVariant(tpr))
        for (rows, cols) in rowCases where cols > 1 {
            let x = randomValues(rows * cols, seed: UInt64(rows * cols), lo: -2, hi: 3), dy = randomValues(rows * cols, seed: 2)
            let g = randomValues(cols, seed: 3, lo: 0.5, hi: 1.5), b = randomValues(cols, seed: 4)
            for affine in [true, false] {
                let tx = try upload(ctx, x, [rows, cols])
                let tg = affine ? try upload(ctx, g, [cols]) : nil, tb = affine ? try upload(ctx, b, [cols]) : nil
                let y = try poisoned(ctx, [rows, cols])
                let (_, stats) = try ctx.layerNorm(tx, gamma: tg, beta: tb, eps: 1e-6, into: y)
                try expectClose(ctx, y, Reference.layerNorm(x, cols: cols, gamma: affine ? g : nil, beta: affine ? b : nil, eps: 1e-6), "layerNorm \(rows)x\(cols)")
                try expectGuardIntact(ctx, y)
                let dx = try poisoned(ctx, [rows, cols]), dg = try poisoned(ctx, [cols]), db = try poisoned(ctx, [cols])
                try ctx.layerNormBackward(tx, gamma: tg, stats: stats, try upload(ctx, dy, [rows, cols]), into: dx, dGamma: dg, dBeta: db)
                let (rdx, rdg, rdb) = Reference.layerNormBackward(x, cols: cols, gamma: affine ? g : nil, eps: 1e-6, dy: dy)
                try expectClose(ctx, dx, rdx, "layerNorm dx \(rows)x\(cols)")
                try expectClose(ctx, dg, rdg, "layerNorm dγ")
                try expectClose(ctx, db, rdb, "layerNorm dβ")
                for t in [dx, dg, db] { try expectGuardIntact(ctx, t) }
            }
        }
        expectNoValidationMessages(ctx)
    }

    /// BatchNorm1d over (B, C), over tokens (B, N, C) and BatchNorm2d over (B, C, H, W); channels
    /// last with C a multiple of 4 ((6, 8), (3, 5, 12)) takes the four-channel path on CPU devices.
    @Test(arguments: rowShapes)
    func batchNormTrainEvalBackward(tpr: UInt32) throws {
        let ctx = try makeContext(variants: rowVariant(tpr))
        let cases: [(shape: [Int], axis: Int)] = [([7, 5], 1), ([2, 7, 3], 2), ([3, 4, 2, 5], 1), ([197, 1], 1), ([6, 8], 1), ([3, 5, 12], 2)]
        for (shape, axis) in cases {
            let bn = BatchNormCase(shape: shape, axis: axis)
            let (C, outer, inner, x, dy) = (bn.C, bn.outer, bn.inner, bn.x, bn.dy)
            let (g, b, rm, rv) = (bn.gamma, bn.beta, bn.runningMean, bn.runningVar)
            for affine in [false, true] {
                let tx = try upload(ctx, x, shape), trm = try upload(ctx, rm, [C]), trv = try upload(ctx, rv, [C])
                let tg = affine ? try upload(ctx, g, [C]) : nil, tb = affine ? try upload(ctx, b, [C]) : nil
                let (y, stats) = try ctx.batchNorm(tx, channelAxis: axis, gamma: tg, beta: tb, runningMean: trm, runningVar: trv,
                                                   training: true, momentum: 0.1, eps: 1e-6)
                let ref = Reference.batchNorm(x, outer: outer, C: C, inner: inner, gamma: affine ? g : nil, beta: affine ? b : nil,
                                              runningMean: rm, runningVar: rv, training: true, momentum: 0.1, eps: 1e-6)
                try expectClose(ctx, y, ref.y, "batchNorm train \(shape)")
                try expectClose(ctx, trm, ref.runningMean, "running mean \(shape)")
                try expectClose(ctx, trv, ref.runningVar, "running var \(shape)")
                let dx = try poisoned(ctx, shape)
                let dgb = affine ? try poisoned(ctx, [2 * C]) : nil
                try ctx.batchNormBackward(tx, channelAxis: axis, gamma: tg, stats: stats, runningVar: trv, training: true, eps: 1e-6,
                                          try upload(ctx, dy, shape), into: dx, dGammaBeta: dgb)
                let (rdx, rdg, rdb) = Reference.batchNormBackward(x, outer: outer, C: C, inner: inner, gamma: affine ? g : nil, eps: 1e-6, dy: dy)
                try expectClose(ctx, dx, rdx, "batchNorm dx \(shape)")
                try expectGuardIntact(ctx, dx)
                if let dgb { try expectClose(ctx, dgb, rdg + rdb, "batchNorm dγ, dβ \(shape)"); try expectGuardIntact(ctx, dgb) }
                // Accumulation adds dx (and dγ, dβ) onto what is there.
                try ctx.batchNormBackward(tx, channelAxis: axis, gamma: tg, stats: stats, runningVar: trv, training: true, eps: 1e-6,
                                          try upload(ctx, dy, shape), into: dx, dGammaBeta: dgb, accumulate: true)
                try expectClose(ctx, dx, rdx.map { 2 * $0 }, "batchNorm accumulated dx \(shape)")
                if let dgb { try expectClose(ctx, dgb, (rdg + rdb).map { 2 * $0 }, "batchNorm accumulated dγ, dβ \(shape)") }
                // Evaluation uses the running statistics.
                let (ye, _) = try ctx.batchNorm(tx, channelAxis: axis, gamma: tg, beta: tb, runningMean: trm, runningVar: trv,
                                                training: false, eps: 1e-6)
                let refEval = Reference.batchNorm(x, outer: outer, C: C, inner: inner, gamma: affine ? g : nil, beta: affine ? b : nil,
                                                  runningMean: ref.runningMean, runningVar: ref.runningVar, training: false, momentum: 0.1, eps: 1e-6)
                try expectClose(ctx, ye, refEval.y, "batchNorm eval \(shape)")
            }
        }
        expectNoValidationMessages(ctx)
    }

    @Test(arguments: rowShapes)
    func l2NormalizeForwardBackward(tpr: UInt32) throws {
        let ctx = try makeContext(variants: rowVariant(tpr))
        for (rows, cols) in rowCases {
            var x = randomValues(rows * cols, seed: UInt64(rows + 3 * cols), lo: -2, hi: 2)
            if rows > 1 { for c in 0..<cols { x[cols + c] = 1e-14 } }   // a row below eps: x / eps, gradient dy / eps
            let dy = randomValues(rows * cols, seed: 5)
            let tx = try upload(ctx, x, [rows, cols])
            let y = try ctx.l2Normalize(tx, eps: 1e-12)
            try expectClose(ctx, y, Reference.l2Normalize(x, cols: cols, eps: 1e-12), "l2Normalize \(rows)x\(cols)")
            let dx = try ctx.l2Normalize(tx, eps: 1e-12, backwardOf: try upload(ctx, dy, [rows, cols]))
            let ref = Reference.l2NormalizeBackward(x, dy, cols: cols, eps: 1e-12)
            try expectClose(ctx, dx, ref, "l2Normalize backward \(rows)x\(cols)")
        }
        expectNoValidationMessages(ctx)
    }

    /// LayerNorm reading the f32 residual stream and writing f16 (the input of an fp16 GEMM).
    @Test(arguments: rowShapes)
    func layerNormWithF16Output(tpr: UInt32) throws {
        guard deviceHas16BitStorage else { return }
        let ctx = try makeContext(variants: rowVariant(tpr))
        for (rows, cols) in rowCases where cols > 1 {
            let x = randomValues(rows * cols, seed: UInt64(rows + cols), lo: -2, hi: 3)
            let g = randomValues(cols, seed: 3, lo: 0.5, hi: 1.5), b = randomValues(cols, seed: 4)
            let y = try poisoned(ctx, [rows, cols], dtype: .f16)
            _ = try ctx.layerNorm(try upload(ctx, x, [rows, cols]), gamma: try upload(ctx, g, [cols]), beta: try upload(ctx, b, [cols]), eps: 1e-6, into: y)
            try expectClose(ctx, y, Reference.layerNorm(x, cols: cols, gamma: g, beta: b, eps: 1e-6), "layerNorm → f16 \(rows)x\(cols)", tolerance: fp16Tolerance)
            try expectGuardIntact(ctx, y)
        }
        expectNoValidationMessages(ctx)
    }
}
