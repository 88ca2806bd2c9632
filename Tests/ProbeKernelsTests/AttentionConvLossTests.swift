import Foundation
import Testing
@testable import ProbeKernels

@Suite struct AttentionTests {
    /// Self- and cross-attention over views of packed projections, with probabilities and backward.
    @Test(arguments: [(1, 1, 1, 1, 4), (2, 3, 7, 5, 8), (1, 2, 1, 197, 16), (2, 1, 9, 9, 70)])
    func attentionForwardBackward(B: Int, H: Int, Lq: Int, Lk: Int, D: Int) throws {
        let ctx = try makeContext()
        let BH = B * H, scale = 1 / Double(D).squareRoot()
        // K and V come packed as (B, Lk, 2, H, D), like a kv Linear's output.
        let q = randomValues(B * Lq * H * D, seed: 1, lo: -2, hi: 2)
        let kv = randomValues(B * Lk * 2 * H * D, seed: 2, lo: -2, hi: 2)
        let dOut = randomValues(BH * Lq * D, seed: 3)
        let tq = try upload(ctx, q, [B, Lq, H, D]).permuted([0, 2, 1, 3])
        let tkv = try upload(ctx, kv, [B, Lk, 2, H, D])
        let tk = try tkv.slice(axis: 2, 0..<1).squeezed(2).permuted([0, 2, 1, 3])
        let tv = try tkv.slice(axis: 2, 1..<2).squeezed(2).permuted([0, 2, 1, 3])
        // Dense (BH, L, D) copies for the reference.
        func dense(_ x: [Double], L: Int, part: Int?, parts: Int) -> [Double] {
            var out: [Double] = []
            for b in 0..<B { for h in 0..<H { for l in 0..<L { for d in 0..<D {
                out.append(part == nil ? x[((b * L + l) * H + h) * D + d] : x[(((b * L + l) * parts + part!) * H + h) * D + d])
            } } } }
            return out
        }
        let rq = dense(q, L: Lq, part: nil, parts: 1), rk = dense(kv, L: Lk, part: 0, parts: 2), rv = dense(kv, L: Lk, part: 1, parts: 2)
        let ref = Reference.attention(q: rq, k: rk, v: rv, BH: BH, Lq: Lq, Lk: Lk, D: D, Dv: D, scale: scale)
        let out = try poisoned(ctx, [B, H, Lq, D])
        let saved = try ctx.attention(q: tq, k: tk, v: tv, scale: Float(scale), into: out, saveProbabilities: true)
        try expectClose(ctx, out, ref.out, "attention out")
        try expectGuardIntact(ctx, out)
        try expectClose(ctx, try #require(saved).probs, ref.probs, "attention probabilities")
        // Without probabilities, same output.
        let out2 = try poisoned(ctx, [B, H, Lq, D])
        try ctx.attention(q: tq, k: tk, v: tv, scale: Float(scale), into: out2)
        try expectClose(ctx, out2, ref.out, "attention out (no probabilities)")
        // Backward into views of a packed gradient buffer (as the kv projection's gradient).
        let dkv = try ctx.tensor([Float](repeating: 0, count: kv.count), [B, Lk, 2, H, D])
        let dk = try dkv.slice(axis: 2, 0..<1).squeezed(2).permuted([0, 2, 1, 3])
        let dv = try dkv.slice(axis: 2, 1..<2).squeezed(2).permuted([0, 2, 1, 3])
        let dq = try poisoned(ctx, [B, H, Lq, D])
        try ctx.attentionBackward(q: tq, k: tk, v: tv, saved: saved!, scale: Float(scale), dOut: try upload(ctx, dOut, [B, H, Lq, D]),
                                  dq: dq, dk: dk, dv: dv)
        let (rdq, rdk, rdv) = Reference.attentionBackward(q: rq, k: rk, v: rv, BH: BH, Lq: Lq, Lk: Lk, D: D, Dv: D, scale: scale, dOut: dOut)
        try expectClose(ctx, dq, rdq, "dq")
        try expectGuardIntact(ctx, dq)
        try expectClose(ctx, try ctx.contiguous(dk), rdk, "dk")
        try expectClose(ctx, try ctx.contiguous(dv), rdv, "dv")
        if BH * Lq * Lk * D <= 4000 {
            let f = { (qq: [Double]) in Reference.attention(q: qq, k: rk, v: rv, BH: BH, Lq: Lq, Lk: Lk, D: D, Dv: D, scale: scale).out }
            expectGradientMatchesFiniteDifference(rq, dy: dOut, forward: f, backward: rdq, "attention dq")
            let fk = { (kk: [Double]) in Reference.attention(q: rq, k: kk, v: rv, BH: BH, Lq: Lq, Lk: Lk, D: D, Dv: D, scale: scale).out }
            expectGradientMatchesFiniteDifference(rk, dy: dOut, forward: fk, backward: rdk, "attention dk")
            let fv = { (vv: [Double]) in Reference.attention(q: rq, k: rk, v: vv, BH: BH, Lq: Lq, Lk: Lk, D: D, Dv: D, scale: scale).out }
            expectGradientMatchesFiniteDifference(rv, dy: dOut, forward: fv, backward: rdv, "attention dv")
        }
        expectNoValidationMessages(ctx)
    }

    @Test func mismatchedShapesAreNamed() throws {
        let ctx = try makeContext()
        do {
            try ctx.attention(q: try ctx.empty([1, 2, 3, 4]), k: try ctx.empty([1, 2, 5, 6]), v: try ctx.empty([1, 2, 5, 4]),
                              scale: 1, into: try ctx.empty([1, 2, 3, 4]))
            Issue.record("expected an error")
        } catch { #expect("\(error)".contains("attention") && "\(error)".contains("[1, 2, 5, 6]")) }
    }
}

@Suite struct ConvLossOptimizerTests {
    @Test(arguments: [(1, 2, 1, 4, 4, 7, 3), (2, 2, 1, 7, 5, 7, 3), (2, 3, 4, 5, 5, 3, 1), (1, 1, 1, 1, 1, 1, 0)])
    func conv2dForwardBackward(B: Int, Cin: Int, Cout: Int, H: Int, W: Int, K: Int, pad: Int) throws {
        let ctx = try makeContext()
        let x = randomValues(B * Cin * H * W, seed: 1), w = randomValues(Cout * Cin * K * K, seed: 2)
        let Ho = H + 2 * pad - K + 1, Wo = W + 2 * pad - K + 1
        let dy = randomValues(B * Cout * Ho * Wo, seed: 3)
        let tx = try upload(ctx, x, [B, Cin, H, W]), tw = try upload(ctx, w, [Cout, Cin, K, K])
        let y = try ctx.conv2d(tx, tw, padding: pad)
        try expectClose(ctx, y, Reference.conv2d(x, B: B, Cin: Cin, H: H, W: W, w: w, Cout: Cout, KH: K, KW: K, pad: pad), "conv2d")
        let dx = try poisoned(ctx, [B, Cin, H, W]), dw = try poisoned(ctx, [Cout, Cin, K, K])
        try ctx.conv2dBackward(tx, tw, padding: pad, try upload(ctx, dy, [B, Cout, Ho, Wo]), dx: dx, dw: dw)
        let (rdx, rdw) = Reference.conv2dBackward(x, B: B, Cin: Cin, H: H, W: W, w: w, Cout: Cout, KH: K, KW: K, pad: pad, dy: dy)
        try expectClose(ctx, dx, rdx, "conv2d dx"); try expectGuardIntact(ctx, dx)
        try expectClose(ctx, dw, rdw, "conv2d dw"); try expectGuardIntact(ctx, dw)
        expectGradientMatchesFiniteDifference(x, dy: dy, forward: { Reference.conv2d($0, B: B, Cin: Cin, H: H, W: W, w: w, Cout: Cout, KH: K, KW: K, pad: pad) }, backward: rdx, "conv2d dx")
        expectGradientMatchesFiniteDifference(w, dy: dy, forward: { Reference.conv2d(x, B: B, Cin: Cin, H: H, W: W, w: $0, Cout: Cout, KH: K, KW: K, pad: pad) }, backward: rdw, "conv2d dw")
        expectNoValidationMessages(ctx)
    }

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
            if rows * C <= 2000 {
                let f = { (l: [Double]) in [Reference.crossEntropy(l, C: C, labels: labels, gradScale: 1).0.reduce(0, +) / Double(rows)] }
                expectGradientMatchesFiniteDifference(logits, dy: [1], forward: f, backward: grad, "cross-entropy")
            }
        }
        // A label outside [0, C) is reported, not silently used.
        let bad = try ctx.crossEntropy(try upload(ctx, [0, 1, 2], [1, 3]), labels: try ctx.tensor([Int32(3)], [1]), gradScale: 1)
        #expect(try ctx.read(bad.losses)[0].isNaN)
        #expect(try ctx.readInt32(bad.ranks) == [-1])
        expectNoValidationMessages(ctx)
    }

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
