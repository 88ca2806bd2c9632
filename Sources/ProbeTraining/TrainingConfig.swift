import Foundation
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
    /// Upstream's `--amp`: the heads' GEMMs take fp16 operands (fp32 accumulation, fp32 results
    /// and master weights), with dynamic loss scaling (`LossScaler`).
    public var amp = false
    /// Lists of settings to train side by side (each head × combination a probe).
    public var sweep = SweepGrid()
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
    /// true with --amp; absent otherwise (so runs written before it existed still resume).
    var amp: Bool?

    init(_ c: TrainingConfig, classes: Int, trainSamples: Int, tokens: Int, dim: Int) {
        heads = c.heads; epochs = c.epochs; batchSize = c.batchSize; accumIter = c.accumIter
        optimizer = c.optimizer.kind.rawValue; momentum = c.optimizer.effectiveMomentum; weightDecay = c.optimizer.weightDecay
        trust = c.optimizer.trust; adamBetas = [c.optimizer.beta1, c.optimizer.beta2]; adamEps = c.optimizer.eps
        peakLR = c.peakLR; minLR = c.minLR; warmupEpochs = c.warmupEpochs; epQueries = c.queries; numHeads = c.numHeads
        seed = c.seed; shots = c.shots; labelFraction = c.labelFraction; self.classes = classes; earlyStop = c.earlyStop
        self.trainSamples = trainSamples; tokensAndDim = [tokens, dim]
        amp = c.amp ? true : nil
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
