/// Dynamic loss scaling for `--amp`, as PyTorch's GradScaler with its defaults (which upstream's
/// NativeScaler uses): the loss gradient is multiplied by `scale` so that small gradients survive
/// their rounding to fp16; before the optimiser step the gradients are divided by it and checked.
/// A non-finite gradient skips the step and halves the scale; 2000 good steps in a row double it.
public struct LossScaler: Codable, Sendable, Equatable {
    public var scale: Double = 65536
    public var goodSteps = 0
    public static let growthInterval = 2000
    public init(scale: Double = 65536) { self.scale = scale }

    /// Records a step's outcome: whether its gradients were finite (and the step taken).
    mutating func update(finite: Bool) {
        if finite {
            goodSteps += 1
            if goodSteps == Self.growthInterval { scale *= 2; goodSteps = 0 }
        } else {
            scale *= 0.5
            goodSteps = 0
        }
    }
}
