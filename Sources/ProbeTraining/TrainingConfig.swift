import Foundation
import ProbeBackbones
import ProbeHeads
import ProbeKernels

/// Early stopping as upstream's `--early_stop` (defaults when enabled: patience 5, min_delta 0.1
/// points, min_epochs 15): an epoch is progress when its val acc@1 exceeds the best progress so far
/// by more than `minDelta` (only progress moves that best); the run stops once `patience`
/// epochs in a row were not progress and at least `minEpochs` epochs ran.
public struct EarlyStopping: Codable, Sendable, Equatable {
    public var patience = 5
    public var minDelta = 0.1
    public var minEpochs = 15
    public init(patience: Int = 5, minDelta: Double = 0.1, minEpochs: Int = 15) {
        self.patience = patience; self.minDelta = minDelta; self.minEpochs = minEpochs
    }
}

/// The heads' arithmetic (`vkprobe train --head-precision`; upstream's `--amp` is fp16). In fp16 and
/// bf16 every GEMM operand is rounded to that type, products are accumulated and stored in fp32,
/// and everything else (softmax, norms, losses, master weights, the optimiser) stays fp32, as
/// PyTorch's autocast does.
public enum HeadPrecision: String, Codable, Sendable, CaseIterable {
    case fp32, fp16, bf16
    /// The dtype GEMM operands are rounded to (nil: fp32 throughout).
    public var gemmInputs: DType? { [.fp16: DType.f16, .bf16: .bf16][self] }
    /// fp16 needs dynamic loss scaling (`LossScaler`): its range ends at 65504 and gradients below
    /// 2⁻²⁴ vanish. bf16 has fp32's exponent range and, as PyTorch's autocast with bf16, trains
    /// without one (its 8 significant bits round more coarsely than fp16's 11 instead).
    public var usesLossScaling: Bool { self == .fp16 }
}

/// Everything a training run is configured with (the `vkprobe train` options).
public struct TrainingConfig: Codable, Sendable {
    public var heads: [String]
    public var epochs = 90
    /// Per step (upstream's per-GPU default is 512).
    public var batchSize = 512
    public var accumIter = 1
    public var optimizer = OptimizerConfig()
    public var blr = 0.1
    public var lr: Double?
    public var minLR = 0.0
    public var warmupEpochs = 10.0
    public var queries = 32
    public var numHeads = 16
    public var seed: UInt64 = 0
    public var shots: Int?
    public var labelFraction: Double?
    public var classes: Int?
    public var earlyStop: EarlyStopping?
    /// fp32, or mixed precision: fp16 (upstream's `--amp`, with dynamic loss scaling) or bf16.
    public var precision = HeadPrecision.fp32
    /// Lists of settings to train side by side (each head × combination a probe).
    public var sweep = SweepGrid()
    /// Layer-wise probing: the tap these heads read (`block8`, `norm`); each probe's directory and
    /// name end with it (`ep/block8`, `ep/blr0.05/block8`). nil: one tap, names without it.
    public var tap: String?
    /// EP's `--d_out` and AB-MILP's variants (upstream's head options).
    public var epDOut = 1
    public var abmilp = ABMILPOptions()
    /// Fine-tuning (`--finetune all|K`): the backbone's part trained with the (single) head; nil:
    /// the backbone is frozen (probing).
    public var finetune: FineTuneScope?
    /// With `finetune`: recompute each trained block's activations in the backward instead of
    /// keeping them (the same numbers, less memory, one more forward of the trained blocks).
    public var gradCheckpoint = false
    public init(heads: [String]) { self.heads = heads }

    public var effectiveBatch: Int { batchSize * accumIter }
    public var peakLR: Double { lr ?? LearningRateSchedule.scaledLR(blr: blr, effectiveBatch: effectiveBatch) }
}

/// Every setting that changes a run's results, recorded in each training-state checkpoint:
/// `--resume` refuses a run whose settings differ and names each difference.
public struct RunFingerprint: Codable, Sendable, Equatable {
    var heads: [String]
    var epochs: Int
    var batchSize: Int
    var accumIter: Int
    var optimizer: String
    var momentum: Double
    var weightDecay: Double
    var trust: Double
    var adamBetas: [Double]
    var adamEps: Double
    var peakLR: Double
    var minLR: Double
    var warmupEpochs: Double
    var epQueries: Int
    var numHeads: Int
    var seed: UInt64
    var shots: Int?
    var labelFraction: Double?
    var classes: Int
    var earlyStop: EarlyStopping?
    var trainSamples: Int
    var tokensAndDim: [Int]
    /// true in fp16 (`--amp`), bf16 true in bf16; absent in fp32 (so runs written before either
    /// existed still resume).
    var amp: Bool?
    var bf16: Bool?
    /// Head options away from upstream's defaults (absent at the defaults, so older runs resume).
    var epDOut: Int?
    var abmilp: String?
    /// `--finetune` (absent when probing, so probe runs of older versions resume).
    var finetune: String?

    init(_ c: TrainingConfig, classes: Int, trainSamples: Int, tokens: Int, dim: Int) {
        heads = c.heads; epochs = c.epochs; batchSize = c.batchSize; accumIter = c.accumIter
        optimizer = c.optimizer.kind.rawValue; momentum = c.optimizer.effectiveMomentum; weightDecay = c.optimizer.weightDecay
        trust = c.optimizer.trust; adamBetas = [c.optimizer.beta1, c.optimizer.beta2]; adamEps = c.optimizer.eps
        peakLR = c.peakLR; minLR = c.minLR; warmupEpochs = c.warmupEpochs; epQueries = c.queries; numHeads = c.numHeads
        seed = c.seed; shots = c.shots; labelFraction = c.labelFraction; self.classes = classes; earlyStop = c.earlyStop
        self.trainSamples = trainSamples; tokensAndDim = [tokens, dim]
        amp = c.precision == .fp16 ? true : nil
        bf16 = c.precision == .bf16 ? true : nil
        epDOut = c.epDOut == 1 ? nil : c.epDOut
        abmilp = c.abmilp.isDefault ? nil : c.abmilp.label
        finetune = c.finetune?.description
    }

    /// "setting: checkpoint X, now Y" for every setting that differs.
    func differences(from saved: RunFingerprint) -> [String] {
        func fields(_ f: RunFingerprint) -> [String: String] {
            guard let data = try? JSONEncoder().encode(f), let o = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return [:] }
            return o.mapValues { "\($0)" }
        }
        let a = fields(saved), b = fields(self)
        return Set(a.keys).union(b.keys).sorted().compactMap { k in
            a[k] == b[k] ? nil : "\(k): checkpoint \(a[k] ?? "unset"), now \(b[k] ?? "unset")"
        }
    }
}

/// Hyperparameter lists trained in one pass (`--blr 0.05,0.1,0.2 --weight-decay 0,0.05`): every
/// head × combination is its own probe, fed the same batches.
public struct SweepGrid: Codable, Sendable, Equatable {
    public var blr: [Double] = []
    public var lr: [Double] = []
    public var weightDecay: [Double] = []
    public var queries: [Int] = []
    public init() {}

    /// Each combination: its name (the swept settings, e.g. `blr0.1-wd0.05`; "" without a sweep)
    /// and the configuration it trains with.
    public func settings(_ base: TrainingConfig) -> [(name: String, config: TrainingConfig)] {
        func g(_ x: Double) -> String { String(format: "%g", x) }
        var out: [(String, TrainingConfig)] = [("", base)]
        func expand<T>(_ values: [T], _ label: (T) -> String, _ apply: @escaping (inout TrainingConfig, T) -> Void) {
            guard !values.isEmpty else { return }
            out = out.flatMap { name, c in
                values.map { v -> (String, TrainingConfig) in
                    var c2 = c
                    apply(&c2, v)
                    let part = values.count > 1 ? label(v) : ""
                    return (name.isEmpty ? part : part.isEmpty ? name : name + "-" + part, c2)
                }
            }
        }
        expand(lr, { "lr" + g($0) }) { $0.lr = $1 }
        expand(blr, { "blr" + g($0) }) { $0.blr = $1; $0.lr = nil }
        expand(weightDecay, { "wd" + g($0) }) { $0.optimizer.weightDecay = $1 }
        expand(queries, { "q\($0)" }) { $0.queries = $1 }
        return out
    }
}
