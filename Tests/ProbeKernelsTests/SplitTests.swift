import Foundation
import ProbeTestSupport
import Testing
@testable import ProbeKernels

@Suite struct OversizedOperandTests {
    /// A (3, 2900, 4096) tensor is 142 MB, beyond lavapipe's 128 MiB maxStorageBufferRange (and the
    /// Vulkan minimum; devices with more are held to 128 MiB here): reduce, softmax and LayerNorm
    /// split it instead of failing or binding out of range.
    @Test func rowOpsAndReductionsSplitOversizedTensors() throws {
        let ctx = try makeContext(maxBindingBytes: 128 << 20)
        let shape = [3, 2900, 4096]
        let n = shape.reduce(1, *)
        try #require(n * 4 > ctx.device.capabilities.maxStorageBufferRange)
        var s: UInt32 = 99
        // Positive values: a well-conditioned mean (zero-mean data would measure cancellation, not the kernel).
        let host = (0..<n).map { _ -> Float in s = s &* 1664525 &+ 1013904223; return Float(s >> 9) / Float(1 << 23) }
        let x = try ctx.tensor(host, shape)
        // Mean over the middle axis.
        let m = try ctx.read(try ctx.reduce(x, axis: 1, .mean).values)
        var want = [Double](repeating: 0, count: 3 * 4096)
        for a in 0..<3 { for b in 0..<2900 { for c in 0..<4096 { want[a * 4096 + c] += Double(host[(a * 2900 + b) * 4096 + c]) / 2900 } } }
        #expect(relativeError(m, want) <= fp32Tolerance)
        // LayerNorm and softmax over the last axis: check a few rows from each half.
        let (y, stats) = try ctx.layerNorm(x, gamma: nil, beta: nil, eps: 1e-5)
        let p = try ctx.softmax(x, scale: 2)
        let yh = try ctx.read(y), ph = try ctx.read(p), st = try ctx.read(stats)
        #expect(st.count == 3 * 2900 * 2)
        for row in [0, 4349, 4350, 8699] {
            let r = Array(host[(row * 4096)..<((row + 1) * 4096)]).map(Double.init)
            #expect(relativeError(Array(yh[(row * 4096)..<((row + 1) * 4096)]), Reference.layerNorm(r, cols: 4096, gamma: nil, beta: nil, eps: 1e-5)) <= fp32Tolerance)
            #expect(relativeError(Array(ph[(row * 4096)..<((row + 1) * 4096)]), Reference.softmax(r, cols: 4096, scale: 2)) <= fp32Tolerance)
        }
        expectNoValidationMessages(ctx)
    }
}

/// Every op under a binding limit of 1 KiB (VKPROBE_MAX_BINDING's mechanism): operands of a few
/// thousand elements no longer fit one binding, so each op takes its split path (pieces of rows,
/// batches, K with accumulation, two-pass statistics) and must still match the reference.
@Suite struct TinyBindingLimitTests {
    static let limit = 1024

    func context() throws -> KernelContext {
        let ctx = try makeContext(maxBindingBytes: Self.limit)
        try #require(ctx.device.capabilities.maxStorageBufferRange == bindingLimit(Self.limit))
        return ctx
    }

    /// Runs `body` and checks it recorded more dispatches than `atLeast` (i.e. it was split).
    func expectSplit(_ ctx: KernelContext, atLeast: Int, _ what: String, _ body: () throws -> Void,
                     sourceLocation: SourceLocation = #_sourceLocation) rethrows {
        let before = ctx.stream.dispatchCount
        try body()
        #expect(ctx.stream.dispatchCount - before >= atLeast, "\(what) was not split (\(ctx.stream.dispatchCount - before) dispatches)",
                sourceLocation: sourceLocation)
    }

    @Test func elementwiseCopyAndReductions() throws {
        let ctx = try context()
        let n = 1031
        let x = randomValues(n, seed: 1, lo: -3, hi: 3), dy = randomValues(n, seed: 2)
        let tx = try upload(ctx, x, [n])
        let y = try poisoned(ctx, [n])
        try expectSplit(ctx, atLeast: 4, "unary") { _ = try ctx.unary(tx, .gelu, alpha: 1.5, beta: 0.25, into: y) }
        try expectClose(ctx, y, Reference.unary(x, .gelu, alpha: 1.5, beta: 0.25), "unary")
        try expectGuardIntact(ctx, y)
        let dx = try poisoned(ctx, [n])
        try ctx.unaryBackward(tx, try upload(ctx, dy, [n]), .tanh, alpha: 0.5, into: dx)
        try expectClose(ctx, dx, Reference.unaryBackward(x, dy, .tanh, alpha: 0.5), "unaryBackward")
        // Broadcast binary over (13, 7, 11) with a (7, 1) operand.
        let a = randomValues(13 * 7 * 11, seed: 3), b = randomValues(7, seed: 4, lo: 0.5, hi: 2)
        let z = try poisoned(ctx, [13, 7, 11])
        try expectSplit(ctx, atLeast: 4, "binary") { _ = try ctx.binary(try upload(ctx, a, [13, 7, 11]), try upload(ctx, b, [7, 1]), .divide, into: z) }
        try expectClose(ctx, z, Reference.binary(a, [13, 7, 11], b, [7, 1], .divide).0, "binary")
        // Permuting copy and f16 conversion.
        let c = randomValues(3 * 7 * 50, seed: 5)
        let tc = try upload(ctx, c, [3, 7, 50])
        let out = try poisoned(ctx, [50, 3, 7])
        try expectSplit(ctx, atLeast: 4, "copy") { try ctx.copy(try tc.permuted([2, 0, 1]), into: out) }
        var want: [Double] = []
        for k in 0..<50 { for i in 0..<3 { for j in 0..<7 { want.append(c[(i * 7 + j) * 50 + k]) } } }
        try expectClose(ctx, out, want, "permuting copy")
        if deviceHas16BitStorage {
            let half = try ctx.empty([3, 7, 50], dtype: .f16)
            try ctx.copy(tc, into: half)
            try expectClose(ctx, try ctx.contiguous(half, dtype: .f32), f16Rounded(c), "f16 copy", tolerance: 0)
        }
        // Reductions over every axis of (6, 50, 9), pieces along outer, R (accumulating) and inner.
        let shape = [6, 50, 9]
        let r = randomValues(shape.reduce(1, *), seed: 6)
        let tr = try upload(ctx, r, shape)
        for axis in 0..<3 {
            for op in [ReduceOp.sum, .mean, .max, .sumOfSquares] {
                let (wantR, arg) = Reference.reduce(r, shape: shape, axis: axis, op)
                var outShape = shape; outShape.remove(at: axis)
                let o = try poisoned(ctx, outShape)
                var res: (values: Tensor, argmax: Tensor?)!
                try expectSplit(ctx, atLeast: 2, "reduce \(op) axis \(axis)") { res = try ctx.reduce(tr, axis: axis, op, into: o) }
                try expectClose(ctx, o, wantR, "\(op) over axis \(axis)")
                try expectGuardIntact(ctx, o)
                if op == .max { #expect(try ctx.readInt32(res.argmax!).map(Int.init) == arg, "argmax over axis \(axis)") }
            }
        }
        // Max over a split reduced axis, then its backward.
        let col = try upload(ctx, r, [2700, 1])
        let m = try ctx.reduce(col, axis: 0, .max)
        let (wm, wa) = Reference.reduce(r, shape: [2700, 1], axis: 0, .max)
        try expectClose(ctx, m.values, wm, "max over 2700 rows")
        #expect(try ctx.readInt32(m.argmax!).map(Int.init) == wa)
        let dmax = randomValues(6 * 9, seed: 7)
        let mx = try ctx.reduce(tr, axis: 1, .max)
        let back = try ctx.maxBackward(try upload(ctx, dmax, [6, 9]), argmax: mx.argmax!, shape: shape, axis: 1)
        let (_, am) = Reference.reduce(r, shape: shape, axis: 1, .max)
        var wantBack = [Double](repeating: 0, count: r.count)
        for o in 0..<6 { for j in 0..<9 { wantBack[(o * 50 + am[o * 9 + j]) * 9 + j] = dmax[o * 9 + j] } }
        try expectClose(ctx, back, wantBack, "maxBackward")
        // Sums of squares (LARS norms).
        let s = try poisoned(ctx, [2])
        try ctx.sumOfSquares(tx, into: s, at: 0)
        try ctx.sumOfSquares(tx, plus: try upload(ctx, dy, [n]), times: 0.3, into: s, at: 1)
        try expectClose(ctx, s, [x.map { $0 * $0 }.reduce(0, +), zip(x, dy).map { ($0 + 0.3 * $1) * ($0 + 0.3 * $1) }.reduce(0, +)], "sumOfSquares")
        expectNoValidationMessages(ctx)
    }

    @Test(arguments: gemmCases, [false, true]) func gemm(_ tc: GEMMCase, swap: Bool) throws {
        try GEMMTests().run(tc, kind: .cpu, dtype: .f32, maxBindingBytes: Self.limit, swap: swap)
    }

    @Test func rowKernels() throws {
        let ctx = try context()
        let (rows, cols) = (40, 100)
        let x = randomValues(rows * cols, seed: 11, lo: -3, hi: 3), dy = randomValues(rows * cols, seed: 12)
        let g = randomValues(cols, seed: 13, lo: 0.5, hi: 1.5), b = randomValues(cols, seed: 14)
        let mask = randomValues(2 * cols, seed: 15, lo: -2, hi: 0)
        let tx = try upload(ctx, x, [rows, cols]), tdy = try upload(ctx, dy, [rows, cols])
        let y = try poisoned(ctx, [rows, cols])
        try expectSplit(ctx, atLeast: 4, "softmax") { _ = try ctx.softmax(tx, scale: 0.7, mask: try upload(ctx, mask, [2, cols]), into: y) }
        try expectClose(ctx, y, Reference.softmax(x, cols: cols, scale: 0.7, mask: mask), "softmax with a 2-row mask")
        let sm = Reference.softmax(x, cols: cols, scale: 0.7)
        let dsm = try poisoned(ctx, [rows, cols])
        try ctx.softmaxBackward(try upload(ctx, sm, [rows, cols]), tdy, scale: 0.7, into: dsm)
        try expectClose(ctx, dsm, Reference.softmaxBackward(sm, dy, cols: cols, scale: 0.7), "softmaxBackward")
        let (ln, stats) = try ctx.layerNorm(tx, gamma: try upload(ctx, g, [cols]), beta: try upload(ctx, b, [cols]), eps: 1e-6)
        try expectClose(ctx, ln, Reference.layerNorm(x, cols: cols, gamma: g, beta: b, eps: 1e-6), "layerNorm")
        let dx = try poisoned(ctx, [rows, cols]), dg = try poisoned(ctx, [cols]), db = try poisoned(ctx, [cols])
        try ctx.layerNormBackward(tx, gamma: try upload(ctx, g, [cols]), stats: stats, tdy, into: dx, dGamma: dg, dBeta: db)
        let (rdx, rdg, rdb) = Reference.layerNormBackward(x, cols: cols, gamma: g, eps: 1e-6, dy: dy)
        try expectClose(ctx, dx, rdx, "layerNorm dx"); try expectClose(ctx, dg, rdg, "layerNorm dγ"); try expectClose(ctx, db, rdb, "layerNorm dβ")
        try expectClose(ctx, try ctx.l2Normalize(tx, eps: 1e-12), Reference.l2Normalize(x, cols: cols, eps: 1e-12), "l2Normalize")
        try expectClose(ctx, try ctx.l2Normalize(tx, eps: 1e-12, backwardOf: tdy), Reference.l2NormalizeBackward(x, dy, cols: cols, eps: 1e-12),
                        "l2Normalize backward")
        let labels = (0..<rows).map { ($0 * 7) % cols }
        let ce = try ctx.crossEntropy(tx, labels: try ctx.tensor(labels.map(Int32.init), [rows]), gradScale: 0.025)
        let (loss, grad, ranks) = Reference.crossEntropy(x, C: cols, labels: labels, gradScale: 0.025)
        try expectClose(ctx, ce.losses, loss, "cross-entropy"); try expectClose(ctx, ce.dLogits, grad, "cross-entropy gradient")
        #expect(try ctx.readInt32(ce.ranks).map(Int.init) == ranks)
        expectNoValidationMessages(ctx)
    }

    /// BatchNorm statistics over every piece (a sum pass and a deviation pass), the running update,
    /// and the backward's per-channel sums, for 1d, token and 2d layouts.
    @Test func batchNorm() throws {
        let ctx = try context()
        for (shape, axis) in [([60, 20], 1), ([4, 30, 20], 2), ([3, 4, 5, 6], 1)] {
            let n = shape.reduce(1, *), C = shape[axis]
            let outer = shape[..<axis].reduce(1, *), inner = shape[(axis + 1)...].reduce(1, *)
            let x = randomValues(n, seed: UInt64(n), lo: -1, hi: 2), dy = randomValues(n, seed: 9)
            let g = randomValues(C, seed: 1, lo: 0.5, hi: 1.5), b = randomValues(C, seed: 2)
            let rm = randomValues(C, seed: 3), rv = randomValues(C, seed: 4, lo: 0.5, hi: 2)
            let tx = try upload(ctx, x, shape), trm = try upload(ctx, rm, [C]), trv = try upload(ctx, rv, [C])
            let (tg, tb) = (try upload(ctx, g, [C]), try upload(ctx, b, [C]))
            var out: (y: Tensor, stats: Tensor)!
            try expectSplit(ctx, atLeast: 4, "batchNorm \(shape)") {
                out = try ctx.batchNorm(tx, channelAxis: axis, gamma: tg, beta: tb, runningMean: trm, runningVar: trv, training: true, eps: 1e-6)
            }
            let ref = Reference.batchNorm(x, outer: outer, C: C, inner: inner, gamma: g, beta: b, runningMean: rm, runningVar: rv,
                                          training: true, momentum: 0.1, eps: 1e-6)
            try expectClose(ctx, out.y, ref.y, "batchNorm \(shape)")
            try expectClose(ctx, trm, ref.runningMean, "running mean \(shape)")
            try expectClose(ctx, trv, ref.runningVar, "running var \(shape)")
            let dx = try poisoned(ctx, shape), dgb = try poisoned(ctx, [2 * C])
            try ctx.batchNormBackward(tx, channelAxis: axis, gamma: tg, stats: out.stats, runningVar: trv, training: true, eps: 1e-6,
                                      try upload(ctx, dy, shape), into: dx, dGammaBeta: dgb)
            let (rdx, rdg, rdb) = Reference.batchNormBackward(x, outer: outer, C: C, inner: inner, gamma: g, eps: 1e-6, dy: dy)
            try expectClose(ctx, dx, rdx, "batchNorm dx \(shape)")
            try expectClose(ctx, dgb, rdg + rdb, "batchNorm dγ, dβ \(shape)")
            let (ye, _) = try ctx.batchNorm(tx, channelAxis: axis, gamma: tg, beta: tb, runningMean: trm, runningVar: trv, training: false, eps: 1e-6)
            let refEval = Reference.batchNorm(x, outer: outer, C: C, inner: inner, gamma: g, beta: b, runningMean: ref.runningMean,
                                              runningVar: ref.runningVar, training: false, momentum: 0.1, eps: 1e-6)
            try expectClose(ctx, ye, refEval.y, "batchNorm eval \(shape)")
        }
        expectNoValidationMessages(ctx)
    }

    @Test func attentionConvAndOptimizer() throws {
        let ctx = try context()
        let (B, H, Lq, Lk, D) = (2, 3, 20, 30, 8)
        let BH = B * H, scale = 1 / Double(D).squareRoot()
        let q = randomValues(BH * Lq * D, seed: 21), k = randomValues(BH * Lk * D, seed: 22), v = randomValues(BH * Lk * D, seed: 23)
        let dOut = randomValues(BH * Lq * D, seed: 24)
        let (tq, tk, tv) = (try upload(ctx, q, [B, H, Lq, D]), try upload(ctx, k, [B, H, Lk, D]), try upload(ctx, v, [B, H, Lk, D]))
        let out = try poisoned(ctx, [B, H, Lq, D])
        var saved: AttentionSaved?
        try expectSplit(ctx, atLeast: 6, "attention") { saved = try ctx.attention(q: tq, k: tk, v: tv, scale: Float(scale), into: out, saveProbabilities: true) }
        let ref = Reference.attention(q: q, k: k, v: v, BH: BH, Lq: Lq, Lk: Lk, D: D, Dv: D, scale: scale)
        try expectClose(ctx, out, ref.out, "attention"); try expectClose(ctx, saved!.probs, ref.probs, "attention probabilities")
        let dq = try poisoned(ctx, [B, H, Lq, D]), dk = try poisoned(ctx, [B, H, Lk, D]), dv = try poisoned(ctx, [B, H, Lk, D])
        try ctx.attentionBackward(q: tq, k: tk, v: tv, saved: saved!, scale: Float(scale), dOut: try upload(ctx, dOut, [B, H, Lq, D]), dq: dq, dk: dk, dv: dv)
        let (rdq, rdk, rdv) = Reference.attentionBackward(q: q, k: k, v: v, BH: BH, Lq: Lq, Lk: Lk, D: D, Dv: D, scale: scale, dOut: dOut)
        try expectClose(ctx, dq, rdq, "attention dq"); try expectClose(ctx, dk, rdk, "attention dk"); try expectClose(ctx, dv, rdv, "attention dv")
        // Convolution over batch pieces; the weight gradient accumulates over them.
        let (cB, Cin, Cout, Hc, Kc) = (5, 2, 2, 7, 3)
        let x = randomValues(cB * Cin * Hc * Hc, seed: 31), w = randomValues(Cout * Cin * Kc * Kc, seed: 32)
        let dy = randomValues(cB * Cout * Hc * Hc, seed: 33)
        let (tx, tw) = (try upload(ctx, x, [cB, Cin, Hc, Hc]), try upload(ctx, w, [Cout, Cin, Kc, Kc]))
        try expectClose(ctx, try ctx.conv2d(tx, tw, padding: 1), Reference.conv2d(x, B: cB, Cin: Cin, H: Hc, W: Hc, w: w, Cout: Cout, KH: Kc, KW: Kc, pad: 1), "conv2d")
        let cdx = try poisoned(ctx, [cB, Cin, Hc, Hc]), cdw = try poisoned(ctx, [Cout, Cin, Kc, Kc])
        try ctx.conv2dBackward(tx, tw, padding: 1, try upload(ctx, dy, [cB, Cout, Hc, Hc]), dx: cdx, dw: cdw)
        let (rdx, rdw) = Reference.conv2dBackward(x, B: cB, Cin: Cin, H: Hc, W: Hc, w: w, Cout: Cout, KH: Kc, KW: Kc, pad: 1, dy: dy)
        try expectClose(ctx, cdx, rdx, "conv2d dx"); try expectClose(ctx, cdw, rdw, "conv2d dw")
        // Optimiser steps over pieces of a 1031-element parameter (LARS norms over pieces too).
        let n = 1031
        let p0 = randomValues(n, seed: 41), g0 = randomValues(n, seed: 42)
        var p = p0, m = [Double](repeating: 0, count: n), v2 = m
        let tp = try upload(ctx, p0, [n]), tm = try upload(ctx, m, [n]), tv2 = try upload(ctx, v2, [n])
        try ctx.optimizerStep(.lars(lr: 0.5, momentum: 0.9, weightDecay: 0.05, trust: 0.001, excluded: false), param: tp, grad: try upload(ctx, g0, [n]), state1: tm)
        Reference.lars(&p, g0, &m, lr: 0.5, momentum: 0.9, wd: 0.05, trust: 0.001, excluded: false)
        try ctx.optimizerStep(.adamw(lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.05, step: 1), param: tp, grad: try upload(ctx, g0, [n]),
                              state1: tm, state2: tv2)
        Reference.adamw(&p, g0, &m, &v2, lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, wd: 0.05, step: 1)
        try expectClose(ctx, tp, p, "LARS then AdamW over pieces")
        expectNoValidationMessages(ctx)
    }
}
