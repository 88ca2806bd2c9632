import Foundation
import Glibc
import ProbeHeads
import SafeTensors

/// One epoch's line of `metrics.jsonl`.
public struct EpochMetrics: Codable, Sendable, Equatable {
    public var epoch: Int
    public var lr: Double
    public var train_loss: Double
    public var train_acc1: Double
    public var val_loss: Double
    public var val_acc1: Double
    public var val_acc5: Double
    public var seconds: Double
}

/// The best epoch so far (val acc@1, its acc@5, the epoch from 0).
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

/// A test facility: `VKPROBE_KILL_AT=POINT:HEAD:EPOCH` makes the process SIGKILL itself when the
/// trainer reaches POINT for HEAD (`*`: any) at EPOCH (from 0): `step` (the middle step of the
/// epoch), `metrics`, `best`, `last`, `state-temp` (the training state written to its temporary
/// file, not yet renamed), `state`, `summary`. The resume tests kill there and check that
/// `--resume` ends exactly as an uninterrupted run.
enum KillPoint {
    static let target: (String, String, Int)? = {
        guard let v = ProcessInfo.processInfo.environment["VKPROBE_KILL_AT"] else { return nil }
        let p = v.split(separator: ":").map(String.init)
        guard p.count == 3, let e = Int(p[2]) else { return nil }
        return (p[0], p[1], e)
    }()

    /// With VKPROBE_KILL_RANK, only that rank of an mpirun job dies.
    static let rankMatches: Bool = {
        let env = ProcessInfo.processInfo.environment
        guard let r = env["VKPROBE_KILL_RANK"] else { return true }
        return env["OMPI_COMM_WORLD_RANK"] == r
    }()

    static func reached(_ point: String, head: String, epoch: Int) {
        guard let t = target, t.0 == point, t.1 == head || t.1 == "*", t.2 == epoch, rankMatches else { return }
        kill(getpid(), SIGKILL)
    }
}
