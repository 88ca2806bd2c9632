import ProbeKernels

public enum OptimizerKind: String, Codable, Sendable, CaseIterable { case lars, sgd, adamw }

/// Optimiser settings (upstream defaults: LARS, momentum 0.9, trust 0.001, weight decay 0).
public struct OptimizerConfig: Codable, Sendable {
    public var kind: OptimizerKind = .lars
    public var momentum: Double = 0.9
    public var weightDecay: Double = 0
    public var trust: Double = 0.001
    public var beta1: Double = 0.9
    public var beta2: Double = 0.999
    public var eps: Double = 1e-8
    public init(kind: OptimizerKind = .lars, weightDecay: Double = 0) { self.kind = kind; self.weightDecay = weightDecay }

    /// The step for one tensor; LARS excludes 1-D tensors (biases) from decay and scaling.
    func step(lr: Double, rank: Int, count: Int) -> OptimizerStep {
        switch kind {
        case .lars:
            return .lars(lr: Float(lr), momentum: Float(momentum), weightDecay: Float(weightDecay), trust: Float(trust), excluded: rank <= 1)
        case .sgd:
            return .sgd(lr: Float(lr), momentum: Float(momentum), weightDecay: Float(weightDecay))
        case .adamw:
            return .adamw(lr: Float(lr), beta1: Float(beta1), beta2: Float(beta2), eps: Float(eps), weightDecay: Float(weightDecay), step: count)
        }
    }
    var usesMomentum: Bool { kind != .sgd || momentum > 0 }
    var usesSecondMoment: Bool { kind == .adamw }
}
