import Foundation
import ProbeShaders
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
        if state2 != nil && state1 == nil { throw OpError.shape(op, "a second moment needs the first (state1)") }
        var kind = OptimizerKernelKind.sgd
        var lr: Float = 0, wd: Float = 0, momentum: Float = 0, trust: Float = -1
        var b1: Float = 0, b2: Float = 0, eps: Float = 0, bc1: Float = 1, bc2: Float = 1
        var norms: Tensor?
        switch step {
        case let .sgd(l, m, w):
            (lr, momentum, wd) = (l, m, w)
            if m > 0, state1 == nil { throw OpError.shape(op, "SGD with momentum needs a momentum buffer") }
        case let .lars(l, m, w, t, excluded):
            kind = .lars
            (lr, momentum, wd, trust) = (l, m, excluded ? 0 : w, excluded ? -1 : t)
            guard state1 != nil else { throw OpError.shape(op, "LARS needs a momentum buffer") }
            if !excluded {
                let n = try empty([2])
                try sumOfSquares(param, into: n, at: 0)
                try sumOfSquares(grad, plus: param, times: w, into: n, at: 1)
                norms = n
            }
        case let .adamw(l, beta1, beta2, e, w, t):
            kind = .adamw
            guard state1 != nil, state2 != nil, t >= 1 else { throw OpError.shape(op, "AdamW needs both moment buffers and step ≥ 1") }
            (lr, wd, b1, b2, eps) = (l, w, beta1, beta2, e)
            bc1 = 1 - Float(pow(Double(beta1), Double(t)))
            bc2 = 1 - Float(pow(Double(beta2), Double(t)))
        }
        let k = try kernel(OptimizerKernel.self, .base, .init(localSizeX: variants.elementwiseLocal, KIND: kind.rawValue))
        let n = param.count
        let operands = try [param, grad, state1, state2].compactMap { $0 }.map { try $0.reshaped([n]) }
        try forEachPiece(op, operands, [SplitAxis(size: n, axes: operands.map { _ in 0 })]) { t, _ in
            let (bp, opar) = try bind(t[0], .readWrite, op: op), (bg, og) = try bind(t[1], .read, op: op)
            let scratch = try scratchBinding()
            let (bm1, om1) = state1 == nil ? (Binding(scratch.range, .readWrite), 0) : try bind(t[2], .readWrite, op: op)
            let (bm2, om2) = state2 == nil ? (Binding(scratch.range, .readWrite), 0) : try bind(t[3], .readWrite, op: op)
            let (bn, on) = try bind(norms, .read, op: op, orPlaceholder: bg)
            let push = OptimizerKernel.Push(n: t[0].count, offP: opar, offG: og, offM1: om1, offM2: om2, offN: on, lr: lr, wd: wd, momentum: momentum,
                                            trust: trust, beta1: b1, beta2: b2, eps: eps, bc1: bc1, bc2: bc2)
            try stream.dispatch(k, [bp, bg, bm1, bm2, bn], push: push, groups: elementGroups(t[0].count))
        }
    }
}
