import ProbeAutodiff
import SafeTensors

/// The parts of a probe head's state dict.
public enum HeadPart: Sendable { case pooling, batchNorm, classifier }

/// The probe head of every method: `Sequential(pooling, BatchNorm1d(W, affine=False, eps=1e-6),
/// Linear(W, C))` with state-dict names `0.*` (pooling), `1.running_mean`, `1.running_var`,
/// `1.num_batches_tracked`, `2.weight`, `2.bias`. Linear probes have no pooling module:
/// `Sequential(BatchNorm1d, Linear)` → `0.*` BatchNorm, `1.*` Linear.
public struct ProbeHeadLayout: Sendable {
    public let pooling: Pooling
    public let classes: Int
    /// eps of the probe's BatchNorm1d (upstream 1e-6).
    public var batchNormEps: Float = 1e-6
    public var isLinearProbe: Bool { pooling is LinearProbeFeatures }

    public init(pooling: Pooling, classes: Int) { self.pooling = pooling; self.classes = classes }

    /// The state-dict prefix of a part (the one place upstream module indices are spelled).
    public func prefix(_ part: HeadPart) -> String {
        switch part {
        case .pooling: return "0."
        case .batchNorm: return isLinearProbe ? "0." : "1."
        case .classifier: return isLinearProbe ? "1." : "2."
        }
    }

    /// Every tensor of the head (parameters and buffers; `num_batches_tracked` counters aside)
    /// under its upstream state-dict name, in pooling, BatchNorm, classifier order.
    public var stateSpecs: [(part: HeadPart, spec: ParameterSpec)] {
        let W = pooling.outputWidth
        let bn = [ParameterSpec("running_mean", [W], .constant(0), trainable: false), ParameterSpec("running_var", [W], .constant(1), trainable: false)]
        let linear = [ParameterSpec("weight", [classes, W], .uniformFanIn(W)), ParameterSpec("bias", [classes], .uniformFanIn(W))]
        func qualified(_ part: HeadPart, _ specs: [ParameterSpec]) -> [(part: HeadPart, spec: ParameterSpec)] {
            specs.map { (part, ParameterSpec(prefix(part) + $0.name, $0.shape, $0.initializer, trainable: $0.trainable)) }
        }
        return (isLinearProbe ? [] : qualified(.pooling, pooling.parameters)) + qualified(.batchNorm, bn) + qualified(.classifier, linear)
    }

    /// Names of the BatchNorms' `num_batches_tracked` counters (the probe's and those inside the
    /// pooling: aim, cbam, dolg), which count the training forwards.
    public var batchCounters: [String] {
        let inner = isLinearProbe ? [] : pooling.parameters.filter { $0.name.hasSuffix(".running_mean") }
            .map { prefix(.pooling) + $0.name.dropLast("running_mean".count) + "num_batches_tracked" }
        return inner + [prefix(.batchNorm) + "num_batches_tracked"]
    }

    /// Trainable parameters of the pooling alone and of the whole head (with the classifier).
    public var poolingParameterCount: Int { pooling.trainableCount }
    public var totalParameterCount: Int { pooling.trainableCount + pooling.outputWidth * classes + classes }
    /// Multiply-adds per image of the forward pass (backward ≈ 2× forward).
    public var forwardMACs: Int { pooling.forwardMACs + pooling.outputWidth * classes }
}

/// Host copies of every tensor of a head, taken once and written to any number of files.
public struct HeadSnapshot: Sendable {
    public var tensors: [(name: String, shape: [Int], values: [Float])]
    public var batchesTracked: Int64
    public let counters: [String]

    /// Writes the head under upstream names (loadable with `safetensors.torch.load_file` +
    /// `load_state_dict` into the upstream head) atomically; `prefix` namespaces the tensors.
    public func write(to path: String, metadata: [String: String], prefix: String = "", extra: (inout SafeTensorsWriter) -> Void = { _ in }) throws {
        var w = SafeTensorsWriter()
        w.metadata = metadata
        for t in tensors { w.add(prefix + t.name, t.values, shape: t.shape) }
        for c in counters { w.add(prefix + c, int64: [batchesTracked], shape: []) }
        extra(&w)
        try w.write(to: path)
    }
}

/// A probe head's tensors on one backend, keyed by upstream state-dict name.
public final class ProbeHeadState<B: Backend> {
    public let layout: ProbeHeadLayout
    public let backend: B
    public let parameters: HeadParameters<B>
    /// BatchNorm's `num_batches_tracked` (upstream int64 buffer).
    public var batchesTracked: Int64 = 0

    /// Freshly initialised with upstream's initialisers (pooling, BatchNorm and classifier each
    /// from their own seeded stream).
    public init(layout: ProbeHeadLayout, backend: B, seed: UInt64) throws {
        self.layout = layout; self.backend = backend
        let specs = layout.stateSpecs
        let streams: [HeadPart: UInt64] = [.pooling: seed, .batchNorm: seed &+ 1, .classifier: seed &+ 2]
        parameters = try HeadParameters(specs: specs.map(\.spec), backend: backend) { i in streams[specs[i].part]! }
    }

    /// Loads a head saved here (`prefix` "" for checkpoints, "head." inside training states) or
    /// converted from an upstream state dict; every missing, unexpected and mis-shaped tensor is listed.
    public init(layout: ProbeHeadLayout, backend: B, file: SafeTensorsFile, prefix: String = "") throws {
        self.layout = layout; self.backend = backend
        let what = "head \(layout.pooling.name) (D = \(layout.pooling.options.dim), classes \(layout.classes))"
        parameters = try HeadParameters(specs: layout.stateSpecs.map(\.spec), backend: backend, file: file, prefix: prefix, what: what)
        let counter = prefix + layout.prefix(.batchNorm) + "num_batches_tracked"
        if let e = file.entries[counter], e.count == 1 { batchesTracked = Int64(try file.ints(counter)[0]) }
    }

    /// The tensor named `name` (upstream state-dict name).
    public subscript(_ name: String) -> B.Value? {
        get { parameters.values[name] }
        set { parameters.values[name] = newValue }
    }

    /// Trainable tensors by upstream name, in state-dict order.
    public var trainable: [(name: String, spec: ParameterSpec)] {
        parameters.specs.filter(\.trainable).map { ($0.name, $0) }
    }

    /// Forward through pooling → BatchNorm1d → Linear. Returns logits, pooled features, maps, and
    /// the trainable variables by upstream name, whose `grad` the backward fills.
    public func forward(_ g: Graph<B>, tokens x: Variable<B>) throws -> (logits: Variable<B>, features: Variable<B>, attention: B.Value?, trainable: [(String, Variable<B>)]) {
        let scope = parameters.scope(in: g)
        func part(_ p: HeadPart) -> ParameterScope<B> { scope.prefixed(layout.prefix(p)) }
        let pooled = try layout.pooling.forward(g, x, part(.pooling))
        let bn = part(.batchNorm)
        let normed = try g.batchNorm(pooled.features, channelAxis: 1, gamma: nil, beta: nil,
                                     runningMean: try bn["running_mean"].value, runningVar: try bn["running_var"].value, eps: layout.batchNormEps)
        if g.training { batchesTracked += 1 }
        let lin = part(.classifier)
        let logits = try g.linear(normed, try lin["weight"], try lin["bias"])
        let vars = trainable.map { ($0.name, scope.variables[$0.name]!) }
        return (logits, pooled.features, pooled.attention, vars)
    }

    /// Host copies of every tensor (one download per tensor).
    public func snapshot() throws -> HeadSnapshot {
        HeadSnapshot(tensors: try parameters.specs.map { ($0.name, $0.shape, try backend.toHost(parameters.values[$0.name]!)) },
                     batchesTracked: batchesTracked, counters: layout.batchCounters)
    }

    /// Saves every tensor under upstream names, atomically.
    public func save(to path: String, metadata: [String: String] = [:]) throws {
        try snapshot().write(to: path, metadata: metadata.merging(headMetadata) { a, _ in a })
    }

    /// What a checkpoint says about the head it holds.
    public var headMetadata: [String: String] {
        ["head": layout.pooling.name, "dim": "\(layout.pooling.options.dim)", "classes": "\(layout.classes)", "format": "pt"]
    }
}
