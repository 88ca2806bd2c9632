import ProbeAutodiff
import SafeTensors

/// The probe head of every method: `Sequential(pooling, BatchNorm1d(W, affine=False, eps=1e-6),
/// Linear(W, C))` with state-dict names `0.*` (pooling), `1.running_mean`, `1.running_var`,
/// `1.num_batches_tracked`, `2.weight`, `2.bias`. Linear probes have no pooling module:
/// `Sequential(BatchNorm1d, Linear)` → `0.*` BatchNorm, `1.*` Linear.
public struct ProbeHeadLayout: Sendable {
    public let pooling: Pooling
    public let classes: Int
    public var isLinearProbe: Bool { pooling is LinearProbeFeatures }
    public var bnPrefix: String { isLinearProbe ? "0." : "1." }
    public var linearPrefix: String { isLinearProbe ? "1." : "2." }
    public var poolingPrefix: String { "0." }

    public init(pooling: Pooling, classes: Int) { self.pooling = pooling; self.classes = classes }

    /// Classifier and BatchNorm tensors (without prefixes).
    public var bnSpecs: [ParameterSpec] {
        let W = pooling.outputWidth
        return [ParameterSpec("running_mean", [W], .constant(0), trainable: false), ParameterSpec("running_var", [W], .constant(1), trainable: false)]
    }
    public var linearSpecs: [ParameterSpec] {
        let W = pooling.outputWidth
        return [ParameterSpec("weight", [classes, W], .uniformFanIn(W)), ParameterSpec("bias", [classes], .uniformFanIn(W))]
    }

    /// Trainable parameters of the pooling alone and of the whole head (with the classifier).
    public var poolingParameterCount: Int { pooling.trainableCount }
    public var totalParameterCount: Int { pooling.trainableCount + pooling.outputWidth * classes + classes }
    /// Multiply-adds per image: forward, and forward + backward (backward ≈ 2× forward).
    public var forwardMACs: Int { pooling.forwardMACs + pooling.outputWidth * classes }
}

/// A probe head's tensors on one backend, with training-mode bookkeeping.
public final class ProbeHeadState<B: Backend> {
    public let layout: ProbeHeadLayout
    public let pooling: HeadParameters<B>
    public let bn: HeadParameters<B>
    public let linear: HeadParameters<B>
    /// BatchNorm's `num_batches_tracked` (upstream int64 buffer).
    public var batchesTracked: Int64 = 0

    public init(layout: ProbeHeadLayout, backend: B, seed: UInt64) throws {
        self.layout = layout
        pooling = try HeadParameters(specs: layout.pooling.parameters, backend: backend, seed: seed)
        bn = try HeadParameters(specs: layout.bnSpecs, backend: backend, seed: seed &+ 1)
        linear = try HeadParameters(specs: layout.linearSpecs, backend: backend, seed: seed &+ 2)
    }

    /// Loads a head saved here or converted from an upstream state dict.
    public init(layout: ProbeHeadLayout, backend: B, file: SafeTensorsFile) throws {
        self.layout = layout
        let what = "head \(layout.pooling.name) (D = \(layout.pooling.options.dim), classes \(layout.classes))"
        // Check the whole file at once so the error lists every problem.
        let all = (layout.isLinearProbe ? [] : layout.pooling.parameters.map { ParameterSpec(layout.poolingPrefix + $0.name, $0.shape, $0.initializer, trainable: $0.trainable) })
            + layout.bnSpecs.map { ParameterSpec(layout.bnPrefix + $0.name, $0.shape, $0.initializer, trainable: false) }
            + layout.linearSpecs.map { ParameterSpec(layout.linearPrefix + $0.name, $0.shape, $0.initializer) }
        _ = try HeadParameters(specs: all, backend: CPUBackend(), file: file, prefix: "", strict: true, what: what)
        pooling = try HeadParameters(specs: layout.isLinearProbe ? [] : layout.pooling.parameters, backend: backend, file: file,
                                     prefix: layout.poolingPrefix, strict: false, what: what)
        bn = try HeadParameters(specs: layout.bnSpecs, backend: backend, file: file, prefix: layout.bnPrefix, strict: false, what: what)
        linear = try HeadParameters(specs: layout.linearSpecs, backend: backend, file: file, prefix: layout.linearPrefix, strict: false, what: what)
        if let e = file.entries[layout.bnPrefix + "num_batches_tracked"], e.count == 1 { batchesTracked = Int64(try file.ints(e.name)[0]) }
    }

    /// Forward through pooling → BatchNorm1d → Linear. Returns logits, pooled features, maps, and
    /// the trainable variables (qualified names `0.*`, `2.*`) whose `grad` the backward fills.
    public func forward(_ g: Graph<B>, tokens x: Variable<B>) throws -> (logits: Variable<B>, features: Variable<B>, attention: B.Value?, trainable: [(String, Variable<B>)]) {
        let poolScope = pooling.scope(in: g)
        let pooled = try layout.pooling.forward(g, x, poolScope)
        let bnScope = bn.scope(in: g)
        let normed = try g.batchNorm(pooled.features, channelAxis: 1, gamma: nil, beta: nil,
                                     runningMean: try bnScope["running_mean"].value, runningVar: try bnScope["running_var"].value, eps: 1e-6)
        if g.training { batchesTracked += 1 }
        let lin = linear.scope(in: g)
        let logits = try g.linear(normed, try lin["weight"], try lin["bias"])
        var trainable: [(String, Variable<B>)] = []
        for s in pooling.specs where s.trainable { trainable.append((layout.poolingPrefix + s.name, poolScope.variables[s.name]!)) }
        for s in linear.specs { trainable.append((layout.linearPrefix + s.name, lin.variables[s.name]!)) }
        return (logits, pooled.features, pooled.attention, trainable)
    }

    /// Saves every tensor under upstream names (loadable with `safetensors.torch.load_file` +
    /// `load_state_dict` into the upstream head), atomically.
    public func save(to path: String, metadata: [String: String] = [:]) throws {
        var w = SafeTensorsWriter()
        w.metadata = metadata.merging(["head": layout.pooling.name, "dim": "\(layout.pooling.options.dim)",
                                       "classes": "\(layout.classes)", "format": "pt"]) { a, _ in a }
        if !layout.isLinearProbe {
            for (s, v) in try pooling.hostValues() {
                w.add(layout.poolingPrefix + s.name, v, shape: s.shape)
                // BatchNorms inside the pooling (aim, cbam, dolg) count the same training forwards.
                if s.name.hasSuffix(".running_mean") {
                    w.add(layout.poolingPrefix + s.name.dropLast("running_mean".count) + "num_batches_tracked", int64: [batchesTracked], shape: [])
                }
            }
        }
        for (s, v) in try bn.hostValues() { w.add(layout.bnPrefix + s.name, v, shape: s.shape) }
        w.add(layout.bnPrefix + "num_batches_tracked", int64: [batchesTracked], shape: [])
        for (s, v) in try linear.hostValues() { w.add(layout.linearPrefix + s.name, v, shape: s.shape) }
        try w.write(to: path)
    }
}
