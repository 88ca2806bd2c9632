import ProbeKernels

public enum OptimizerKind: String, Codable, Sendable, CaseIterable { case lars, sgd, adamw }

/// Optimiser settings. Upstream defaults: LARS with momentum 0.9 and trust 0.001; SGD is
/// PyTorch's SGD as upstream builds it (`SGD(params, lr, weight_decay)`: momentum 0); AdamW with
/// PyTorch's betas and eps; weight decay 0.
public struct OptimizerConfig: Codable, Sendable, Equatable {
    public var kind: OptimizerKind = .lars
    /// nil: the optimiser's upstream default (LARS 0.9, SGD 0).
    public var momentum: Double?
    public var weightDecay: Double = 0
    public var trust: Double = 0.001
    public var beta1: Double = 0.9
    public var beta2: Double = 0.999
    public var eps: Double = 1e-8
    public init(kind: OptimizerKind = .lars, weightDecay: Double = 0, momentum: Double? = nil) {
        self.kind = kind; self.weightDecay = weightDecay; self.momentum = momentum
    }

    public var effectiveMomentum: Double { momentum ?? (kind == .lars ? 0.9 : 0) }

    /// The step for one tensor; LARS excludes 1-D tensors (biases) from decay and scaling
    /// (upstream `p.ndim > 1`).
    func step(lr: Double, rank: Int, count: Int) -> OptimizerStep {
        switch kind {
        case .lars:
            return .lars(lr: Float(lr), momentum: Float(effectiveMomentum), weightDecay: Float(weightDecay), trust: Float(trust), excluded: rank <= 1)
        case .sgd:
            return .sgd(lr: Float(lr), momentum: Float(effectiveMomentum), weightDecay: Float(weightDecay))
        case .adamw:
            return .adamw(lr: Float(lr), beta1: Float(beta1), beta2: Float(beta2), eps: Float(eps), weightDecay: Float(weightDecay), step: count)
        }
    }
    var usesMomentum: Bool { kind != .sgd || effectiveMomentum > 0 }
    var usesSecondMoment: Bool { kind == .adamw }
}
