import Foundation
import VulkanCompute

/// Hyper-parameters of one optimiser step.
public enum OptimizerStep: Sendable {
    /// d = g + wd·p; with momentum: m = μ·m + d, p −= lr·m (PyTorch SGD, no dampening/nesterov).
    case sgd(lr: Float, momentum: Float, weightDecay: Float)
    /// LARS exactly as upstream util/lars.py (HEADS.md). `excluded`: 1-D tensors (biases, norms).
    case lars(lr: Float, momentum: Float, weightDecay: Float, trust: Float, excluded: Bool)
    /// PyTorch AdamW; `step` counts from 1.
    case adamw(lr: Float, beta1: Float, beta2: Float, eps: Float, weightDecay: Float, step: Int)
}

extension KernelContext {
    /// Updates `param` in place from `grad`. `state1` holds momentum (SGD with μ > 0, LARS, AdamW's
    /// first moment), `state2` AdamW's second moment; both start at zero.
    public func optimizerStep(_ step: OptimizerStep, param: Tensor, grad: Tensor, state1: Tensor?, state2: Tensor? = nil) throws {
        let op = "optimizerStep"
        try checkDevice(op, param, grad); try requireContiguous(op, param, grad); try requireF32(op, param, grad)
        guard param.count == grad.count else { throw OpError.shape(op, "param \(param), grad \(grad)") }
        for s in [state1, state2].compactMap({ $0 }) {
            try checkDevice(op, s); try requireContiguous(op, s)
            guard s.count == param.count else { throw OpError.shape(op, "state \(s) for param \(param)") }
        }
        var kind: UInt32 = 0
        var lr: Float = 0, wd: Float = 0, momentum: Float = 0, trust: Float = -1
        var b1: Float = 0, b2: Float = 0, eps: Float = 0, bc1: Float = 1, bc2: Float = 1
        var norms: Tensor?
        switch step {
        case let .sgd(l, m, w):
            (lr, momentum, wd) = (l, m, w)
            if m > 0, state1 == nil { throw OpError.shape(op, "SGD with momentum needs a momentum buffer") }
        case let .lars(l, m, w, t, excluded):
            kind = 1
            (lr, momentum, wd, trust) = (l, m, excluded ? 0 : w, excluded ? -1 : t)
            guard state1 != nil else { throw OpError.shape(op, "LARS needs a momentum buffer") }
            if !excluded {
                let n = try empty([2])
                try sumOfSquares(param, into: n, at: 0)
                try sumOfSquares(grad, plus: param, times: w, into: n, at: 1)
                norms = n
            }
        case let .adamw(l, beta1, beta2, e, w, t):
            kind = 2
            guard state1 != nil, state2 != nil, t >= 1 else { throw OpError.shape(op, "AdamW needs both moment buffers and step ≥ 1") }
            (lr, wd, b1, b2, eps) = (l, w, beta1, beta2, e)
            bc1 = 1 - Float(pow(Double(beta1), Double(t)))
            bc2 = 1 - Float(pow(Double(beta2), Double(t)))
        }
        let (bp, opar) = try bind(param, .readWrite, op: op), (bg, og) = try bind(grad, .read, op: op)
        let (bm1, om1) = try state1.map { try bind($0, .readWrite, op: op) } ?? (try Binding(device.makeBuffer(bytes: 16).whole, .readWrite), 0)
        let (bm2, om2) = try state2.map { try bind($0, .readWrite, op: op) } ?? (try Binding(device.makeBuffer(bytes: 16).whole, .readWrite), 0)
        let (bn, on) = try norms.map { try bind($0, .read, op: op) } ?? (bg, 0)
        var p = Push()
        for n in [param.count, opar, og, om1, om2, on] { p.u(n) }
        for f in [lr, wd, momentum, trust, b1, b2, eps, bc1, bc2] { p.f(f) }
        let k = try kernel("optimizer", bindings: 5, push: p.bytes, spec: [variants.elementwiseLocal, kind])
        try stream.dispatch(k, [bp, bg, bm1, bm2, Binding(bn.range, .read)], push: p.words,
                            groups: (groups(param.count, Int(variants.elementwiseLocal)), 1, 1))
    }
}
