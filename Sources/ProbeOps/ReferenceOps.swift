import Foundation

extension Reference {
    // MARK: Elementwise

    public static func unary(_ x: [Double], _ act: Activation, alpha: Double = 1, beta: Double = 0) -> [Double] {
        x.map { activate(act, alpha * $0 + beta) }
    }

    public static func unaryBackward(_ x: [Double], _ dy: [Double], _ act: Activation, alpha: Double = 1, beta: Double = 0) -> [Double] {
        zip(x, dy).map { $1 * alpha * activateGrad(act, alpha * $0 + beta) }
    }

    /// Broadcasting binary op; returns the result and its shape.
    public static func binary(_ x: [Double], _ xs: [Int], _ y: [Double], _ ys: [Int], _ op: BinaryOp,
                              alpha: Double = 1, beta: Double = 1) -> ([Double], [Int]) {
        let r = max(xs.count, ys.count)
        let px = Array(repeating: 1, count: r - xs.count) + xs, py = Array(repeating: 1, count: r - ys.count) + ys
        let shape = zip(px, py).map { max($0, $1) }
        let n = shape.reduce(1, *)
        func index(_ flat: Int, _ s: [Int]) -> Int {
            var rem = flat, idx = 0, mul = 1
            for d in (0..<r).reversed() {
                let c = rem % shape[d]; rem /= shape[d]
                idx += (s[d] == 1 ? 0 : c) * mul
                mul *= s[d]
            }
            return idx
        }
        let out = (0..<n).map { i -> Double in
            let a = alpha * x[index(i, px)], b = beta * y[index(i, py)]
            switch op { case .add: return a + b; case .subtract: return a - b; case .multiply: return a * b; case .divide: return a / b }
        }
        return (out, shape)
    }

    // MARK: Reductions

    /// Reduces `axis` of a dense tensor; returns values (and argmax for max).
    public static func reduce(_ x: [Double], shape: [Int], axis: Int, _ op: ReduceOp) -> ([Double], [Int]) {
        let outer = shape[..<axis].reduce(1, *), R = shape[axis], inner = shape[(axis + 1)...].reduce(1, *)
        var values = [Double](), arg = [Int]()
        for o in 0..<outer {
            for j in 0..<inner {
                var acc = op == .max ? -Double.infinity : 0, best = 0
                for r in 0..<R {
                    let v = x[(o * R + r) * inner + j]
                    switch op {
                    case .sum, .mean: acc += v
                    case .sumOfSquares: acc += v * v
                    case .max: if r == 0 || v > acc { acc = v; best = r }
                    }
                }
                values.append(op == .mean ? acc / Double(R) : acc)
                arg.append(best)
            }
        }
        return (values, arg)
    }

    // MARK: Softmax

    public static func softmax(_ x: [Double], cols: Int, scale: Double = 1, mask: [Double]? = nil) -> [Double] {
        let rows = x.count / cols, maskRows = mask.map { $0.count / cols } ?? 1
        var y = [Double](repeating: 0, count: x.count)
        for r in 0..<rows {
            var l = (0..<cols).map { scale * x[r * cols + $0] }
            if let mask { for c in 0..<cols { l[c] += mask[(r % maskRows) * cols + c] } }
            let m = l.max()!
            let e = l.map { exp($0 - m) }, s = e.reduce(0, +)
            for c in 0..<cols { y[r * cols + c] = e[c] / s }
        }
        return y
    }

    public static func softmaxBackward(_ y: [Double], _ dy: [Double], cols: Int, scale: Double = 1) -> [Double] {
        var dx = [Double](repeating: 0, count: y.count)
        for r in 0..<(y.count / cols) {
            var d = 0.0
            for c in 0..<cols { d += y[r * cols + c] * dy[r * cols + c] }
            for c in 0..<cols { dx[r * cols + c] = scale * y[r * cols + c] * (dy[r * cols + c] - d) }
        }
        return dx
    }

    // MARK: LayerNorm

    public static func layerNorm(_ x: [Double], cols: Int, gamma: [Double]?, beta: [Double]?, eps: Double) -> [Double] {
        var y = [Double](repeating: 0, count: x.count)
        for r in 0..<(x.count / cols) {
            let row = Array(x[(r * cols)..<((r + 1) * cols)])
            let mean = row.reduce(0, +) / Double(cols)
            let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(cols)
            let rstd = 1 / (variance + eps).squareRoot()
            for c in 0..<cols { y[r * cols + c] = (row[c] - mean) * rstd * (gamma?[c] ?? 1) + (beta?[c] ?? 0) }
        }
        return y
    }

    /// RMSNorm: `x / √(mean(x²) + eps) · γ`.
    public static func rmsNorm(_ x: [Double], cols: Int, gamma: [Double]?, eps: Double) -> [Double] {
        var y = [Double](repeating: 0, count: x.count)
        for r in 0..<(x.count / cols) {
            let row = x[(r * cols)..<((r + 1) * cols)]
            let rstd = 1 / (row.map { $0 * $0 }.reduce(0, +) / Double(cols) + eps).squareRoot()
            for c in 0..<cols { y[r * cols + c] = x[r * cols + c] * rstd * (gamma?[c] ?? 1) }
        }
        return y
    }

    /// Rotary embedding of dense (B, T, H, hd) x by (T, hd) tables: `x·cos + rot(x)·sin`, rot
    /// pairing (2j, 2j+1) as `[-x1, x0, …]` (interleaved) or (j, j + hd/2) as `[-x₂, x₁]` (half).
    public static func rope(_ x: [Double], B: Int, T: Int, H: Int, hd: Int, cos: [Double], sin: [Double], half: Bool) -> [Double] {
        var y = x
        for b in 0..<B { for t in 0..<T { for h in 0..<H {
            let base = ((b * T + t) * H + h) * hd
            for d in 0..<hd {
                let rot: Double
                if half { rot = d < hd / 2 ? -x[base + d + hd / 2] : x[base + d - hd / 2] }
                else { rot = d % 2 == 0 ? -x[base + d + 1] : x[base + d - 1] }
                y[base + d] = x[base + d] * cos[t * hd + d] + rot * sin[t * hd + d]
            }
        } } }
        return y
    }

    /// Returns (dx, dγ, dβ).
    public static func layerNormBackward(_ x: [Double], cols: Int, gamma: [Double]?, eps: Double, dy: [Double]) -> ([Double], [Double], [Double]) {
        var dx = [Double](repeating: 0, count: x.count), dg = [Double](repeating: 0, count: cols), db = [Double](repeating: 0, count: cols)
        for r in 0..<(x.count / cols) {
            let row = Array(x[(r * cols)..<((r + 1) * cols)])
            let mean = row.reduce(0, +) / Double(cols)
            let rstd = 1 / (row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(cols) + eps).squareRoot()
            let xhat = row.map { ($0 - mean) * rstd }
            let g = (0..<cols).map { dy[r * cols + $0] * (gamma?[$0] ?? 1) }
            let mg = g.reduce(0, +) / Double(cols), mgx = zip(g, xhat).map(*).reduce(0, +) / Double(cols)
            for c in 0..<cols {
                dx[r * cols + c] = rstd * (g[c] - mg - xhat[c] * mgx)
                dg[c] += dy[r * cols + c] * xhat[c]
                db[c] += dy[r * cols + c]
            }
        }
        return (dx, dg, db)
    }

    // MARK: BatchNorm over (outer, C, inner)

    public struct BatchNormOutput { public var y: [Double]; public var runningMean: [Double]; public var runningVar: [Double] }

    public static func batchNorm(_ x: [Double], outer: Int, C: Int, inner: Int, gamma: [Double]?, beta: [Double]?,
                                 runningMean: [Double], runningVar: [Double], training: Bool, momentum: Double, eps: Double) -> BatchNormOutput {
        var y = [Double](repeating: 0, count: x.count), rm = runningMean, rv = runningVar
        let n = outer * inner
        for c in 0..<C {
            let values = (0..<n).map { x[($0 / inner) * C * inner + c * inner + $0 % inner] }
            var mean = runningMean[c], variance = runningVar[c]
            if training {
                mean = values.reduce(0, +) / Double(n)
                variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n)
                rm[c] = (1 - momentum) * rm[c] + momentum * mean
                rv[c] = (1 - momentum) * rv[c] + momentum * variance * Double(n) / Double(n - 1)
            }
            let rstd = 1 / (variance + eps).squareRoot()
            for e in 0..<n {
                let i = (e / inner) * C * inner + c * inner + e % inner
                y[i] = (x[i] - mean) * rstd * (gamma?[c] ?? 1) + (beta?[c] ?? 0)
            }
        }
        return BatchNormOutput(y: y, runningMean: rm, runningVar: rv)
    }

    /// Training-mode backward: (dx, dγ, dβ).
    public static func batchNormBackward(_ x: [Double], outer: Int, C: Int, inner: Int, gamma: [Double]?, eps: Double, dy: [Double]) -> ([Double], [Double], [Double]) {
        var dx = [Double](repeating: 0, count: x.count), dg = [Double](repeating: 0, count: C), db = [Double](repeating: 0, count: C)
        let n = outer * inner
        for c in 0..<C {
            let idx = (0..<n).map { ($0 / inner) * C * inner + c * inner + $0 % inner }
            let values = idx.map { x[$0] }
            let mean = values.reduce(0, +) / Double(n)
            let rstd = 1 / (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n) + eps).squareRoot()
            let sdy = idx.map { dy[$0] }.reduce(0, +)
            let sdyx = idx.map { dy[$0] * (x[$0] - mean) * rstd }.reduce(0, +)
            let g = gamma?[c] ?? 1
            for i in idx { dx[i] = g * rstd * (dy[i] - sdy / Double(n) - (x[i] - mean) * rstd * sdyx / Double(n)) }
            dg[c] = sdyx; db[c] = sdy
        }
        return (dx, dg, db)
    }

    // MARK: Attention over dense (BH, L, D) arrays

    /// `bias` (BH / heads-periodic: (H, Lq, Lk), repeated over the batch) is added to the scaled scores.
    public static func attention(q: [Double], k: [Double], v: [Double], BH: Int, Lq: Int, Lk: Int, D: Int, Dv: Int, scale: Double,
                                 bias: [Double]? = nil) -> (out: [Double], probs: [Double]) {
        let biasHeads = (bias?.count ?? 0) / max(Lq * Lk, 1)
        var out = [Double](repeating: 0, count: BH * Lq * Dv), probs = [Double](repeating: 0, count: BH * Lq * Lk)
        for z in 0..<BH {
            for i in 0..<Lq {
                var s = [Double](repeating: 0, count: Lk)
                for j in 0..<Lk {
                    var acc = 0.0
                    for d in 0..<D { acc += q[(z * Lq + i) * D + d] * k[(z * Lk + j) * D + d] }
                    s[j] = scale * acc
                    if let bias { s[j] += bias[((z % biasHeads) * Lq + i) * Lk + j] }
                }
                let m = s.max()!, e = s.map { exp($0 - m) }, l = e.reduce(0, +)
                for j in 0..<Lk { probs[(z * Lq + i) * Lk + j] = e[j] / l }
                for c in 0..<Dv {
                    var acc = 0.0
                    for j in 0..<Lk { acc += probs[(z * Lq + i) * Lk + j] * v[(z * Lk + j) * Dv + c] }
                    out[(z * Lq + i) * Dv + c] = acc
                }
            }
        }
        return (out, probs)
    }

    /// (dq, dk, dv)
    public static func attentionBackward(q: [Double], k: [Double], v: [Double], BH: Int, Lq: Int, Lk: Int, D: Int, Dv: Int,
                                         scale: Double, dOut: [Double]) -> ([Double], [Double], [Double]) {
        let P = attention(q: q, k: k, v: v, BH: BH, Lq: Lq, Lk: Lk, D: D, Dv: Dv, scale: scale).probs
        var dq = [Double](repeating: 0, count: q.count), dk = [Double](repeating: 0, count: k.count), dv = [Double](repeating: 0, count: v.count)
        for z in 0..<BH {
            for i in 0..<Lq {
                var dP = [Double](repeating: 0, count: Lk)
                for j in 0..<Lk { for c in 0..<Dv { dP[j] += dOut[(z * Lq + i) * Dv + c] * v[(z * Lk + j) * Dv + c] } }
                let p = (0..<Lk).map { P[(z * Lq + i) * Lk + $0] }
                let dot = zip(p, dP).map(*).reduce(0, +)
                let dS = (0..<Lk).map { scale * p[$0] * (dP[$0] - dot) }
                for j in 0..<Lk {
                    for c in 0..<Dv { dv[(z * Lk + j) * Dv + c] += p[j] * dOut[(z * Lq + i) * Dv + c] }
                    for d in 0..<D {
                        dq[(z * Lq + i) * D + d] += dS[j] * k[(z * Lk + j) * D + d]
                        dk[(z * Lk + j) * D + d] += dS[j] * q[(z * Lq + i) * D + d]
                    }
                }
            }
        }
        return (dq, dk, dv)
    }

    // MARK: Convolution (stride 1, zero padding)

    public static func conv2d(_ x: [Double], B: Int, Cin: Int, H: Int, W: Int, w: [Double], Cout: Int, KH: Int, KW: Int, pad: Int) -> [Double] {
        let Ho = H + 2 * pad - KH + 1, Wo = W + 2 * pad - KW + 1
        var y = [Double](repeating: 0, count: B * Cout * Ho * Wo)
        for b in 0..<B { for co in 0..<Cout { for oy in 0..<Ho { for ox in 0..<Wo {
            var s = 0.0
            for ci in 0..<Cin { for ky in 0..<KH { for kx in 0..<KW {
                let iy = oy + ky - pad, ix = ox + kx - pad
                if iy < 0 || ix < 0 || iy >= H || ix >= W { continue }
                s += x[((b * Cin + ci) * H + iy) * W + ix] * w[((co * Cin + ci) * KH + ky) * KW + kx]
            } } }
            y[((b * Cout + co) * Ho + oy) * Wo + ox] = s
        } } } }
        return y
    }

    /// (dx, dw)
    public static func conv2dBackward(_ x: [Double], B: Int, Cin: Int, H: Int, W: Int, w: [Double], Cout: Int, KH: Int, KW: Int, pad: Int,
                                      dy: [Double]) -> ([Double], [Double]) {
        let Ho = H + 2 * pad - KH + 1, Wo = W + 2 * pad - KW + 1
        var dx = [Double](repeating: 0, count: x.count), dw = [Double](repeating: 0, count: w.count)
        for b in 0..<B { for co in 0..<Cout { for oy in 0..<Ho { for ox in 0..<Wo {
            let g = dy[((b * Cout + co) * Ho + oy) * Wo + ox]
            for ci in 0..<Cin { for ky in 0..<KH { for kx in 0..<KW {
                let iy = oy + ky - pad, ix = ox + kx - pad
                if iy < 0 || ix < 0 || iy >= H || ix >= W { continue }
                dx[((b * Cin + ci) * H + iy) * W + ix] += g * w[((co * Cin + ci) * KH + ky) * KW + kx]
                dw[((co * Cin + ci) * KH + ky) * KW + kx] += g * x[((b * Cin + ci) * H + iy) * W + ix]
            } } }
        } } } }
        return (dx, dw)
    }

    // MARK: Cross-entropy

    /// Per-row losses, gradient of gradScale·Σ losses, and label ranks.
    public static func crossEntropy(_ logits: [Double], C: Int, labels: [Int], gradScale: Double) -> ([Double], [Double], [Int]) {
        var losses: [Double] = [], grad = [Double](repeating: 0, count: logits.count), ranks: [Int] = []
        for (r, label) in labels.enumerated() {
            let row = Array(logits[(r * C)..<((r + 1) * C)])
            let m = row.max()!, lse = m + log(row.map { exp($0 - m) }.reduce(0, +))
            losses.append(lse - row[label])
            for c in 0..<C { grad[r * C + c] = gradScale * (exp(row[c] - lse) - (c == label ? 1 : 0)) }
            ranks.append((0..<C).filter { row[$0] > row[label] || (row[$0] == row[label] && $0 < label) }.count)
        }
        return (losses, grad, ranks)
    }

    // MARK: Optimisers (one step; state arrays updated in place)

    public static func sgd(_ p: inout [Double], _ g: [Double], _ m: inout [Double], lr: Double, momentum: Double, wd: Double) {
        for i in p.indices {
            var d = g[i] + wd * p[i]
            if momentum > 0 { m[i] = momentum * m[i] + d; d = m[i] }
            p[i] -= lr * d
        }
    }

    public static func lars(_ p: inout [Double], _ g: [Double], _ m: inout [Double], lr: Double, momentum: Double, wd: Double,
                            trust: Double, excluded: Bool) {
        var d = g
        if !excluded {
            d = zip(g, p).map { $0 + wd * $1 }
            let pn = p.map { $0 * $0 }.reduce(0, +).squareRoot(), dn = d.map { $0 * $0 }.reduce(0, +).squareRoot()
            let r = pn > 0 && dn > 0 ? trust * pn / dn : 1
            d = d.map { $0 * r }
        }
        for i in p.indices { m[i] = momentum * m[i] + d[i]; p[i] -= lr * m[i] }
    }

    public static func adamw(_ p: inout [Double], _ g: [Double], _ m: inout [Double], _ v: inout [Double], lr: Double,
                             beta1: Double, beta2: Double, eps: Double, wd: Double, step: Int) {
        let bc1 = 1 - pow(beta1, Double(step)), bc2 = 1 - pow(beta2, Double(step))
        for i in p.indices {
            p[i] *= 1 - lr * wd
            m[i] = beta1 * m[i] + (1 - beta1) * g[i]
            v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i]
            p[i] -= lr * (m[i] / bc1) / ((v[i] / bc2).squareRoot() + eps)
        }
    }
}

extension Reference {
    /// x / max(‖x‖₂, eps) per row of `cols` (PyTorch F.normalize).
    public static func l2Normalize(_ x: [Double], cols: Int, eps: Double) -> [Double] {
        var y = x
        for r in 0..<(x.count / cols) {
            let n = max((0..<cols).map { x[r * cols + $0] * x[r * cols + $0] }.reduce(0, +).squareRoot(), eps)
            for c in 0..<cols { y[r * cols + c] = x[r * cols + c] / n }
        }
        return y
    }

    /// Backward of `l2Normalize`: (dy − y Σ dy·y) / ‖x‖ where the norm exceeds eps, else dy / eps.
    public static func l2NormalizeBackward(_ x: [Double], _ dy: [Double], cols: Int, eps: Double) -> [Double] {
        var dx = dy
        for r in 0..<(x.count / cols) {
            let norm = (0..<cols).map { x[r * cols + $0] * x[r * cols + $0] }.reduce(0, +).squareRoot()
            if norm > eps {
                let d = (0..<cols).map { dy[r * cols + $0] * x[r * cols + $0] }.reduce(0, +) / norm
                for c in 0..<cols { dx[r * cols + c] = (dy[r * cols + c] - x[r * cols + c] / norm * d) / norm }
            } else {
                for c in 0..<cols { dx[r * cols + c] = dy[r * cols + c] / eps }
            }
        }
        return dx
    }
}
