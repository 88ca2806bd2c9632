import Foundation

/// CPU implementation of every op, accumulating in Double: the oracle for kernel tests and the
/// function whose finite differences check every backward. Tensors are dense row-major `[Double]`.
public enum Reference {
    public static func activate(_ act: Activation, _ x: Double) -> Double {
        switch act {
        case .none: return x
        case .gelu: return 0.5 * x * (1 + erf(x / 2.0.squareRoot()))
        case .quickGELU: return x * sigmoid(1.702 * x)
        case .tanhGELU: return 0.5 * x * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)))
        case .relu: return max(x, 0)
        case .sigmoid: return sigmoid(x)
        case .tanh: return Foundation.tanh(x)
        case .softplus: return x > 20 ? x : log1p(exp(x))
        case .silu: return x * sigmoid(x)
        }
    }

    public static func activateGrad(_ act: Activation, _ x: Double) -> Double {
        switch act {
        case .none: return 1
        case .gelu: return 0.5 * (1 + erf(x / 2.0.squareRoot())) + x * exp(-0.5 * x * x) / (2 * Double.pi).squareRoot()
        case .quickGELU: let s = sigmoid(1.702 * x); return s + 1.702 * x * s * (1 - s)
        case .tanhGELU:
            let c = (2 / Double.pi).squareRoot()
            let t = Foundation.tanh(c * (x + 0.044715 * x * x * x))
            return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x)
        case .relu: return x > 0 ? 1 : 0
        case .sigmoid: let s = sigmoid(x); return s * (1 - s)
        case .tanh: let t = Foundation.tanh(x); return 1 - t * t
        case .softplus: return x > 20 ? 1 : sigmoid(x)
        case .silu: let s = sigmoid(x); return s + x * s * (1 - s)
        }
    }

    static func sigmoid(_ x: Double) -> Double { 1 / (1 + exp(-x)) }

    /// `C[b] = act(alpha A[b] B[b] + beta C[b] + bias)` with A (batch?, M, K), B (batch?, K, N) already
    /// in logical orientation; `batchA`/`batchB` false means shared across the batch.
    public static func gemm(_ a: [Double], _ b: [Double], c: [Double]? = nil, batch: Int, M: Int, N: Int, K: Int,
                            batchA: Bool, batchB: Bool, alpha: Double = 1, beta: Double = 0,
                            bias: [Double]? = nil, activation: Activation = .none) -> [Double] {
        var out = [Double](repeating: 0, count: batch * M * N)
        for bi in 0..<batch {
            let oa = batchA ? bi * M * K : 0, ob = batchB ? bi * K * N : 0
            for i in 0..<M {
                for j in 0..<N {
                    var s = 0.0
                    for k in 0..<K { s += a[oa + i * K + k] * b[ob + k * N + j] }
                    var v = alpha * s
                    let idx = bi * M * N + i * N + j
                    if beta != 0, let c { v += beta * c[idx] }
                    if let bias { v += bias[j] }
                    out[idx] = activate(activation, v)
                }
            }
        }
        return out
    }

    /// Transposes the last two axes of a (batch, R, C) array.
    public static func transpose(_ x: [Double], batch: Int, rows: Int, cols: Int) -> [Double] {
        var out = [Double](repeating: 0, count: x.count)
        for b in 0..<batch { for r in 0..<rows { for c in 0..<cols { out[b * rows * cols + c * rows + r] = x[b * rows * cols + r * cols + c] } } }
        return out
    }
}
