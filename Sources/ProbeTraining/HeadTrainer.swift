import Foundation
import ProbeAutodiff
import ProbeHeads
import ProbeKernels
import SafeTensors
import VulkanCompute

/// Which tokens a head consumes (upstream `--cls_features`).
public enum TokenSelection: Sendable {
    case patches      // (B, N, D): attentive poolings and `lp` (mean of patches)
    case cls          // (B, D): `lp_cls`
    case clsAndPatches  // (B, 1 + N, D): `NAME_all`

    public init(head: String) {
        if head == "lp_cls" { self = .cls } else if head.hasSuffix("_all") { self = .clsAndPatches } else { self = .patches }
    }
}

/// One batch on the device, shared by every head.
public struct DeviceBatch {
    public let tokens: Tensor
    public let cls: Tensor?
    public let labels: Tensor
    public let size: Int
    var all: Tensor?
}

/// Results of one head on one batch.
public struct BatchResult {
    public var lossSum: Double
    public var top1: Int
    public var top5: Int
    public var count: Int
    public var finite: Bool
}

/// A head being trained: its tensors, optimiser state and status.
public final class HeadTrainer {
    public let name: String
    public let layout: ProbeHeadLayout
    public let selection: TokenSelection
    public let state: ProbeHeadState<GPUBackend>
    let gpu: GPUBackend
    var ctx: KernelContext { gpu.ctx }
    let optimizer: OptimizerConfig
    var moment1: [String: Tensor] = [:]
    var moment2: [String: Tensor] = [:]
    var accumulated: [String: Tensor] = [:]
    public internal(set) var optimizerSteps = 0
    /// Why the head stopped early (non-finite loss), if it did.
    public internal(set) var stopReason: String?

    init(name: String, layout: ProbeHeadLayout, gpu: GPUBackend, optimizer: OptimizerConfig, seed: UInt64) throws {
        self.name = name; self.layout = layout; self.gpu = gpu; self.optimizer = optimizer
        selection = TokenSelection(head: name)
        state = try ProbeHeadState(layout: layout, backend: gpu, seed: seed)
    }

    /// The tensors the optimiser updates, by qualified (upstream) name.
    var parameterTensors: [(String, Tensor, [Int])] {
        state.pooling.specs.filter(\.trainable).map { (layout.poolingPrefix + $0.name, state.pooling.values[$0.name]!, $0.shape) }
            + state.linear.specs.map { (layout.linearPrefix + $0.name, state.linear.values[$0.name]!, $0.shape) }
    }

    func input(_ b: inout DeviceBatch) throws -> Tensor {
        switch selection {
        case .patches: return b.tokens
        case .cls:
            guard let c = b.cls else { throw TrainingError("\(name) needs the [CLS] token: the token file has no `cls` tensor") }
            return c
        case .clsAndPatches:
            if let a = b.all { return a }
            guard let c = b.cls else { throw TrainingError("\(name) needs the [CLS] token: the token file has no `cls` tensor") }
            let a = try ctx.concat([try c.reshaped([b.size, 1, c.shape[1]]), b.tokens], axis: 1)
            b.all = a
            return a
        }
    }

    /// Forward, loss and (when `train`) backward of one (micro-)batch; gradients are scaled by
    /// `gradScale` and accumulated until `applyStep` runs the optimiser with `lr`.
    func run(_ batch: inout DeviceBatch, train: Bool, gradScale: Float, applyStep lr: Double?) throws -> BatchResult {
        let x = try input(&batch)
        let g = Graph(gpu, training: train)
        let (logits, _, _, trainable) = try state.forward(g, tokens: g.input(x))
        let ce = try ctx.crossEntropy(logits.value, labels: batch.labels, gradScale: gradScale)
        if train {
            try g.backward(logits, grad: ce.dLogits)
            for (qualified, v) in trainable {
                guard let grad = v.grad else { continue }
                if let acc = accumulated[qualified] { accumulated[qualified] = try ctx.add(acc, grad) } else { accumulated[qualified] = try ctx.contiguous(grad) }
            }
        }
        let losses = try ctx.read(ce.losses)
        let ranks = try ctx.readInt32(ce.ranks)
        let lossSum = losses.reduce(0) { $0 + Double($1) }
        let result = BatchResult(lossSum: lossSum, top1: ranks.filter { $0 >= 0 && $0 < 1 }.count, top5: ranks.filter { $0 >= 0 && $0 < 5 }.count,
                                 count: batch.size, finite: lossSum.isFinite)
        if train, let lr {
            guard result.finite else { accumulated = [:]; return result }   // no update from a non-finite loss
            try applyOptimizer(lr: lr)
        }
        return result
    }

    func applyOptimizer(lr: Double) throws {
        optimizerSteps += 1
        for (qualified, param, shape) in parameterTensors {
            guard let grad = accumulated[qualified] else { continue }
            if optimizer.usesMomentum, moment1[qualified] == nil { moment1[qualified] = try gpu.zeros(shape) }
            if optimizer.usesSecondMoment, moment2[qualified] == nil { moment2[qualified] = try gpu.zeros(shape) }
            // LARS scales tensors with more than one dimension (upstream `p.ndim > 1`).
            try ctx.optimizerStep(optimizer.step(lr: lr, rank: shape.count, count: optimizerSteps), param: param, grad: grad,
                                  state1: moment1[qualified], state2: moment2[qualified])
        }
        accumulated = [:]
    }

    // MARK: Checkpoints

    /// Full training state (head tensors, optimiser moments, counters): what `--resume` reads.
    func saveState(to path: String, metadata: [String: String]) throws {
        var w = SafeTensorsWriter()
        w.metadata = metadata.merging(["optimizer_steps": "\(optimizerSteps)", "batches_tracked": "\(state.batchesTracked)",
                                       "head": name, "kind": "vkprobe-training-state"]) { a, _ in a }
        let pooling = try state.pooling.hostValues(), bn = try state.bn.hostValues(), linear = try state.linear.hostValues()
        for (s, v) in pooling { w.add("head." + layout.poolingPrefix + s.name, v, shape: s.shape) }
        for (s, v) in bn { w.add("head." + layout.bnPrefix + s.name, v, shape: s.shape) }
        for (s, v) in linear { w.add("head." + layout.linearPrefix + s.name, v, shape: s.shape) }
        for (k, t) in moment1 { w.add("optimizer.m1." + k, try ctx.read(t), shape: t.shape) }
        for (k, t) in moment2 { w.add("optimizer.m2." + k, try ctx.read(t), shape: t.shape) }
        try w.write(to: path)
    }

    /// Restores from `saveState`'s file after checking it is this head's and intact.
    func loadState(from path: String) throws -> [String: String] {
        let f: SafeTensorsFile
        do { f = try SafeTensorsFile(path: path) } catch {
            throw TrainingError("cannot resume \(name): \(error) — the checkpoint is damaged; remove \(path) to start over (nothing was overwritten)")
        }
        guard f.metadata["kind"] == "vkprobe-training-state", f.metadata["head"] == name else {
            throw TrainingError("cannot resume \(name): \(path) is not a \(name) training checkpoint (head '\(f.metadata["head"] ?? "?")'); nothing was overwritten")
        }
        func restore(_ p: HeadParameters<GPUBackend>, _ prefix: String) throws {
            for s in p.specs {
                let key = "head." + prefix + s.name
                guard let e = f.entries[key], e.shape == s.shape else {
                    throw TrainingError("cannot resume \(name): \(path) lacks \(key) \(s.shape) (different head width or classes?); nothing was overwritten")
                }
                p.values[s.name] = try gpu.constant(try f.floats(key), s.shape)
            }
        }
        try restore(state.pooling, layout.poolingPrefix)
        try restore(state.bn, layout.bnPrefix)
        try restore(state.linear, layout.linearPrefix)
        moment1 = [:]; moment2 = [:]
        for key in f.names where key.hasPrefix("optimizer.") {
            let e = try f.entry(key)
            let t = try gpu.constant(try f.floats(key), e.shape)
            if key.hasPrefix("optimizer.m1.") { moment1[String(key.dropFirst("optimizer.m1.".count))] = t }
            if key.hasPrefix("optimizer.m2.") { moment2[String(key.dropFirst("optimizer.m2.".count))] = t }
        }
        optimizerSteps = Int(f.metadata["optimizer_steps"] ?? "0") ?? 0
        state.batchesTracked = Int64(f.metadata["batches_tracked"] ?? "0") ?? 0
        return f.metadata
    }
}
