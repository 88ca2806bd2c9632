import Foundation
import Glibc
import ProbeHeads
import SafeTensors

/// One epoch's line of `metrics.jsonl`. In memory `epoch` counts from 0 (as checkpoints and
/// TensorBoard steps do, as upstream's); in the file it counts from 1, as the console does.
public struct EpochMetrics: Codable, Sendable, Equatable {
    public var epoch: Int
    public var lr: Double
    public var train_loss: Double
    public var train_acc1: Double
    public var val_loss: Double
    public var val_acc1: Double
    public var val_acc5: Double
    public var seconds: Double

    public init(epoch: Int, lr: Double, train_loss: Double, train_acc1: Double, val_loss: Double, val_acc1: Double, val_acc5: Double, seconds: Double) {
        self.epoch = epoch; self.lr = lr; self.train_loss = train_loss; self.train_acc1 = train_acc1
        self.val_loss = val_loss; self.val_acc1 = val_acc1; self.val_acc5 = val_acc5; self.seconds = seconds
    }

    enum CodingKeys: String, CodingKey { case epoch, lr, train_loss, train_acc1, val_loss, val_acc1, val_acc5, seconds }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(epoch: try c.decode(Int.self, forKey: .epoch) - 1, lr: try c.decode(Double.self, forKey: .lr),
                  train_loss: try c.decode(Double.self, forKey: .train_loss), train_acc1: try c.decode(Double.self, forKey: .train_acc1),
                  val_loss: try c.decode(Double.self, forKey: .val_loss), val_acc1: try c.decode(Double.self, forKey: .val_acc1),
                  val_acc5: try c.decode(Double.self, forKey: .val_acc5), seconds: try c.decode(Double.self, forKey: .seconds))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(epoch + 1, forKey: .epoch); try c.encode(lr, forKey: .lr)
        try c.encode(train_loss, forKey: .train_loss); try c.encode(train_acc1, forKey: .train_acc1)
        try c.encode(val_loss, forKey: .val_loss); try c.encode(val_acc1, forKey: .val_acc1)
        try c.encode(val_acc5, forKey: .val_acc5); try c.encode(seconds, forKey: .seconds)
    }

    /// The lines of a `metrics.jsonl`. Files written before epochs counted from 1 begin at epoch 0
    /// (a file from 1 never holds 0): theirs are read as they were meant.
    public static func lines(_ text: String) -> [EpochMetrics] {
        var lines = text.split(separator: "\n").compactMap { try? JSONDecoder().decode(EpochMetrics.self, from: Data($0.utf8)) }
        if lines.first?.epoch == -1 { for i in lines.indices { lines[i].epoch += 1 } }
        return lines
    }
}

/// The best epoch so far (val acc@1, its acc@5, the epoch from 0; summary.json says it from 1).
public struct BestEpoch: Codable, Sendable, Equatable {
    public var acc1: Double
    public var acc5: Double
    public var epoch: Int
}

/// Upstream's early-stopping counters: the best val acc@1 that counted as progress, and the
/// epochs since.
struct EarlyStopState: Codable, Sendable, Equatable {
    var best = -1.0
    var stale = 0

    /// Records epoch `epoch`'s val acc@1 as upstream does; true when the run should stop.
    mutating func record(acc1: Double, epoch: Int, rule: EarlyStopping) -> Bool {
        if acc1 > best + rule.minDelta { best = acc1; stale = 0 } else { stale += 1 }
        return epoch + 1 >= rule.minEpochs && stale >= rule.patience
    }
}

/// What a training-state checkpoint records besides its tensors (JSON under the metadata key
/// `vkprobe.state`; `kind` and `head` are also plain keys, for a quick look).
struct TrainingStateMeta: Codable {
    static let kind = "vkprobe-training-state"
    var version = 1
    var head: String
    /// The last completed epoch (from 0).
    var epoch: Int
    var best: BestEpoch?
    var earlyStop: EarlyStopState
    var stopped: String?
    var optimizerSteps: Int
    var fingerprint: RunFingerprint
    /// In fp16 (--amp): the loss scale and its count of good steps.
    var lossScaler: LossScaler?

    var metadata: [String: String] {
        let json = String(decoding: (try? JSONEncoder().encode(self)) ?? Data(), as: UTF8.self)
        return ["kind": Self.kind, "head": head, "epoch": "\(epoch)", "vkprobe.state": json]
    }

    /// The metadata of `file`, after checking it is `head`'s training state.
    static func read(_ file: SafeTensorsFile, head: String) throws -> TrainingStateMeta {
        guard file.metadata["kind"] == kind, file.metadata["head"] == head else {
            throw TrainingError("cannot resume \(head): \(file.path) is not a \(head) training checkpoint (head '\(file.metadata["head"] ?? "?")'); nothing was overwritten")
        }
        guard let json = file.metadata["vkprobe.state"], let meta = try? JSONDecoder().decode(TrainingStateMeta.self, from: Data(json.utf8)) else {
            throw TrainingError("cannot resume \(head): \(file.path) lacks its run record (written by another version?); nothing was overwritten")
        }
        return meta
    }
}

/// Where a run may be killed on purpose (the resume tests' fault injection).
public enum KillSite: String, CaseIterable, Sendable {
    /// The middle step of an epoch.
    case step
    case metrics, best, last
    /// The training state written to its temporary file, not yet renamed.
    case stateTemp = "state-temp"
    case state, summary
    /// A token-cache shard written, or in its temporary file.
    case extractShard = "extract-shard", extractTemp = "extract-temp"
}

/// A test seam: the process SIGKILLs itself when it reaches `site` for `head` (`*`: any) at
/// `epoch` (from 0; a shard's index for the extraction sites). The command line sets it from
/// `VKPROBE_KILL_AT=SITE:HEAD:EPOCH` (with `VKPROBE_KILL_RANK`, only in that rank of an mpirun
/// job); the resume tests kill there and check that `--resume` ends exactly as an uninterrupted run.
public struct KillPlan: Sendable, Equatable {
    public var site: KillSite
    public var head: String
    public var epoch: Int
    public init(site: KillSite, head: String, epoch: Int) { self.site = site; self.head = head; self.epoch = epoch }

    /// Parses `SITE:HEAD:EPOCH`.
    public init(_ spec: String) throws {
        let p = spec.split(separator: ":").map(String.init)
        guard p.count == 3, let site = KillSite(rawValue: p[0]), let e = Int(p[2]) else {
            throw TrainingError("kill point `\(spec)`: expected SITE:HEAD:EPOCH with SITE one of \(KillSite.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self.init(site: site, head: p[1], epoch: e)
    }
}

enum KillPoint {
    /// Set once by the command line before any work (nil: never).
    nonisolated(unsafe) static var plan: KillPlan?

    static func reached(_ site: KillSite, head: String, epoch: Int) {
        guard let t = plan, t.site == site, t.head == head || t.head == "*", t.epoch == epoch else { return }
        kill(getpid(), SIGKILL)
    }
}

extension KillPlan {
    /// Arms the plan for this process.
    public func arm() { KillPoint.plan = self }
}
