import Foundation
import ProbeOps
import ProbeTestBasics
import Testing

/// Every backward of the Double reference against central differences of its forward — the
/// oracle the device kernels are then compared with (ProbeKernelsTests), checked here without a
/// device: for L(x) = Σ dy ⊙ f(x), dL/dx must equal the backward's (bound 1e-6, see
/// `expectGradientMatchesFiniteDifference`).
@Suite struct ReferenceGradientTests {
    /// ReLU's kink makes finite differences meaningless at 0 only; it is left out.
    @Test(arguments: Activation.allCases.filter { $0 != .relu })
    func unary(_ act: Activation) {
        for n in [1, 7, 197] {
            let x = randomValues(n, seed: UInt64(n), lo: -4, hi: 4), dy = randomValues(n, seed: UInt64(n) + 9)
            let (alpha, beta) = (1.25, -0.5)
            expectGradientMatchesFiniteDifference(x, dy: dy, forward: { Reference.unary($0, act, alpha: alpha, beta: beta) },
                                                  backward: Reference.unaryBackward(x, dy, act, alpha: alpha, beta: beta), "\(act) n=\(n)")
        }
    }

    @Test func softmax() {
        for (rows, cols) in [(1, 1), (3, 7), (5, 64), (2, 197)] {
            let x = randomValues(rows * cols, seed: UInt64(rows * 31 + cols), lo: -3, hi: 3), dy = randomValues(rows * cols, seed: 2)
            let y = Reference.softmax(x, cols: cols, scale: 0.7)
            expectGradientMatchesFiniteDifference(x, dy: dy, forward: { Reference.softmax($0, cols: cols, scale: 0.7) },
                                                  backward: Reference.softmaxBackward(y, dy, cols: cols, scale: 0.7), "softmax \(rows)x\(cols)")
        }
    }

    @Test func layerNorm() {
        for (rows, cols) in [(1, 1), (3, 7), (4, 64), (2, 197)] {
            let x = randomValues(rows * cols, seed: UInt64(rows + cols), lo: -2, hi: 2), dy = randomValues(rows * cols, seed: 5)
            let g = randomValues(cols, seed: 1, lo: 0.5, hi: 1.5), b = randomValues(cols, seed: 2)
            for affine in [false, true] {
                let (dx, dg, db) = Reference.layerNormBackward(x, cols: cols, gamma: affine ? g : nil, eps: 1e-6, dy: dy)
                expectGradientMatchesFiniteDifference(x, dy: dy, forward: { Reference.layerNorm($0, cols: cols, gamma: affine ? g : nil, beta: affine ? b : nil, eps: 1e-6) },
                                                      backward: dx, "layerNorm dx \(rows)x\(cols) affine \(affine)")
                if affine {
                    expectGradientMatchesFiniteDifference(g, dy: dy, forward: { Reference.layerNorm(x, cols: cols, gamma: $0, beta: b, eps: 1e-6) }, backward: dg, "layerNorm dγ")
                    expectGradientMatchesFiniteDifference(b, dy: dy, forward: { Reference.layerNorm(x, cols: cols, gamma: g, beta: $0, eps: 1e-6) }, backward: db, "layerNorm dβ")
                }
            }
        }
    }

    @Test func batchNorm() {
        for (shape, axis) in [([7, 5], 1), ([2, 7, 3], 2), ([3, 4, 2, 5], 1), ([6, 8], 1)] as [([Int], Int)] {
            let bn = BatchNormCase(shape: shape, axis: axis)
            let (C, outer, inner, x, dy) = (bn.C, bn.outer, bn.inner, bn.x, bn.dy)
            let (g, b, rm, rv) = (bn.gamma, bn.beta, bn.runningMean, bn.runningVar)
            for affine in [false, true] {
                let (dx, _, _) = Reference.batchNormBackward(x, outer: outer, C: C, inner: inner, gamma: affine ? g : nil, eps: 1e-6, dy: dy)
                expectGradientMatchesFiniteDifference(x, dy: dy, forward: {
                    Reference.batchNorm($0, outer: outer, C: C, inner: inner, gamma: affine ? g : nil, beta: affine ? b : nil,
                                        runningMean: rm, runningVar: rv, training: true, momentum: 0.1, eps: 1e-6).y
                }, backward: dx, "batchNorm dx \(shape) axis \(axis) affine \(affine)")
            }
        }
    }

    @Test func l2Normalize() {
        for cols in [1, 7, 64, 197] {
            let x = randomValues(cols, seed: UInt64(cols), lo: -2, hi: 2), dy = randomValues(cols, seed: 5)
            expectGradientMatchesFiniteDifference(x, dy: dy, forward: { Reference.l2Normalize($0, cols: cols, eps: 1e-12) },
                                                  backward: Reference.l2NormalizeBackward(x, dy, cols: cols, eps: 1e-12), "l2Normalize \(cols)")
        }
    }

    @Test(arguments: [(1, 1, 1, 1, 4), (2, 3, 7, 5, 8), (1, 2, 20, 9, 16), (2, 1, 9, 9, 7)])
    func attention(B: Int, H: Int, Lq: Int, Lk: Int, D: Int) {
        let BH = B * H, scale = 1 / Double(D).squareRoot()
        let q = randomValues(BH * Lq * D, seed: 1), k = randomValues(BH * Lk * D, seed: 2), v = randomValues(BH * Lk * D, seed: 3)
        let dOut = randomValues(BH * Lq * D, seed: 4)
        let (dq, dk, dv) = Reference.attentionBackward(q: q, k: k, v: v, BH: BH, Lq: Lq, Lk: Lk, D: D, Dv: D, scale: scale, dOut: dOut)
        func f(_ q: [Double], _ k: [Double], _ v: [Double]) -> [Double] { Reference.attention(q: q, k: k, v: v, BH: BH, Lq: Lq, Lk: Lk, D: D, Dv: D, scale: scale).out }
        expectGradientMatchesFiniteDifference(q, dy: dOut, forward: { f($0, k, v) }, backward: dq, "attention dq")
        expectGradientMatchesFiniteDifference(k, dy: dOut, forward: { f(q, $0, v) }, backward: dk, "attention dk")
        expectGradientMatchesFiniteDifference(v, dy: dOut, forward: { f(q, k, $0) }, backward: dv, "attention dv")
    }

    @Test(arguments: [(1, 1, 5, 5, 1, 3, 1), (2, 3, 6, 4, 2, 3, 1), (1, 2, 4, 4, 3, 1, 0)])
    func conv2d(B: Int, Cin: Int, H: Int, W: Int, Cout: Int, K: Int, pad: Int) {
        let x = randomValues(B * Cin * H * W, seed: 1), w = randomValues(Cout * Cin * K * K, seed: 2)
        let Ho = H + 2 * pad - K + 1, Wo = W + 2 * pad - K + 1
        let dy = randomValues(B * Cout * Ho * Wo, seed: 3)
        let (dx, dw) = Reference.conv2dBackward(x, B: B, Cin: Cin, H: H, W: W, w: w, Cout: Cout, KH: K, KW: K, pad: pad, dy: dy)
        expectGradientMatchesFiniteDifference(x, dy: dy, forward: { Reference.conv2d($0, B: B, Cin: Cin, H: H, W: W, w: w, Cout: Cout, KH: K, KW: K, pad: pad) }, backward: dx, "conv2d dx")
        expectGradientMatchesFiniteDifference(w, dy: dy, forward: { Reference.conv2d(x, B: B, Cin: Cin, H: H, W: W, w: $0, Cout: Cout, KH: K, KW: K, pad: pad) }, backward: dw, "conv2d dw")
    }

    @Test func crossEntropy() {
        for (rows, C) in [(1, 1), (7, 10), (3, 197)] {
            var logits = randomValues(rows * C, seed: UInt64(C), lo: -3, hi: 3)
            if C > 3 { logits[1] = logits[2] }   // a tie, broken by index
            let labels = (0..<rows).map { ($0 * 7 + 2) % C }
            let grad = Reference.crossEntropy(logits, C: C, labels: labels, gradScale: 1 / Double(rows)).1
            expectGradientMatchesFiniteDifference(logits, dy: [1], forward: { [Reference.crossEntropy($0, C: C, labels: labels, gradScale: 1).0.reduce(0, +) / Double(rows)] },
                                                  backward: grad, "cross-entropy \(rows)x\(C)")
        }
    }
}
