import Foundation

/// The upstream per-iteration schedule (util/lr_sched.py): on the fractional epoch t, linear
/// warm-up from 0 over `warmupEpochs`, then half-cosine from `peak` to `minLR` at `epochs`.
public struct LearningRateSchedule: Codable, Sendable {
    public var peak: Double
    public var minLR: Double
    public var warmupEpochs: Double
    public var epochs: Double
    public init(peak: Double, minLR: Double = 0, warmupEpochs: Double, epochs: Double) {
        self.peak = peak; self.minLR = minLR; self.warmupEpochs = warmupEpochs; self.epochs = epochs
    }
    public func lr(atEpoch t: Double) -> Double {
        if t < warmupEpochs { return peak * t / warmupEpochs }
        let span = max(epochs - warmupEpochs, 1e-12)
        return minLR + (peak - minLR) * 0.5 * (1 + cos(Double.pi * (t - warmupEpochs) / span))
    }
    /// Upstream scaling: lr = blr × effective batch / 256.
    public static func scaledLR(blr: Double, effectiveBatch: Int) -> Double { blr * Double(effectiveBatch) / 256 }
}
