import Foundation
import ProbeData

/// Upstream's frozen backbone in train mode. `engine_finetune.train_one_epoch` calls
/// `model.train(True)` on the whole model, the frozen backbone included, so while the heads train
/// the backbone's train-time randomness is live (its evaluation runs in eval mode). Where that
/// changes the forward of a leaderboard row:
/// - BEiTv2 and SimMIM (upstream's SimMIM loader builds them with `drop_path_rate=0.1`): each
///   block's attention and MLP branch is dropped per sample with probability pᵢ (pᵢ =
///   linspace(0, 0.1, depth)[i]), else scaled by 1/(1 − pᵢ) (timm's `DropPath`, `scale_by_keep`).
/// - DINOv3 (the hub's `pos_embed_rope_rescale_coords=2`): before each block the RoPE coordinates
///   are multiplied by exp(U(−ln 2, ln 2)), one factor for the whole batch.
/// Every other row's backbone has no train-time randomness (no drop path, no dropout), so train
/// mode changes nothing there. The draws come from VulkanProbe's own generator, seeded per batch:
/// the same seed gives the same run; PyTorch's exact draws are not reproduced.
public struct TrainModeNoise: Sendable, Equatable {
    /// Drop-path probability per block (0: none).
    public var dropPath: [Float]
    /// DINOv3's coordinate rescale bound (2: factors in [½, 2]); nil: none.
    public var ropeRescale: Float?

    /// What upstream's train mode does to this configuration's forward; nil where it does nothing.
    public static func upstream(for c: ViTConfig) -> TrainModeNoise? {
        switch c.family {
        case .beit:
            let rate: Float = 0.1
            return TrainModeNoise(dropPath: (0..<c.depth).map { c.depth > 1 ? rate * Float($0) / Float(c.depth - 1) : 0 }, ropeRescale: nil)
        case .dinov3 where c.rope?.kind == .dinov3:
            return TrainModeNoise(dropPath: [Float](repeating: 0, count: c.depth), ropeRescale: 2)
        default:
            return nil
        }
    }

    /// One forward's draws: per block, the attention and MLP branches' per-sample factors (0 or
    /// 1/(1 − p); nil where p = 0) and the RoPE rescale factor.
    public struct Draw {
        public var branchFactors: [(attn: [Float], mlp: [Float])?]
        public var ropeScale: [Float?]
        public init(branchFactors: [(attn: [Float], mlp: [Float])?], ropeScale: [Float?]) {
            self.branchFactors = branchFactors; self.ropeScale = ropeScale
        }
    }

    /// The draws of one forward: batch `index` of `epoch` under the run's `seed` (the
    /// augmentation's generator, so a run is reproducible from its seed).
    public func draw(seed: UInt64, epoch: Int, index: Int, batch: Int) -> Draw {
        var rng = AugmentRNG(seed: seed ^ 0x7261_696E_6D6F_6465, epoch: epoch, index: index)   // "trainmode": apart from the crops' streams
        var factors: [(attn: [Float], mlp: [Float])?] = []
        var scales: [Float?] = []
        for p in dropPath {
            if let r = ropeRescale {
                let bound = Double(log(r))
                scales.append(Float(exp(rng.uniform(-bound, bound))))
            } else {
                scales.append(nil)
            }
            if p > 0 {
                let keep = 1 - p
                func one() -> [Float] { (0..<batch).map { _ in rng.uniform(0, 1) < Double(keep) ? 1 / keep : 0 } }
                factors.append((one(), one()))
            } else {
                factors.append(nil)
            }
        }
        return Draw(branchFactors: factors, ropeScale: scales)
    }
}
