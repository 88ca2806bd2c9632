import ProbeAutodiff
import ProbeOps

/// Options every head is built from (upstream flags in parentheses).
public struct HeadOptions: Sendable {
    /// Token width D.
    public var dim: Int
    /// Tokens given to the pooling, N (patches, plus one with `_all`).
    public var tokens: Int
    /// EP queries Q (`--ep_queries`, default 32).
    public var queries: Int = 32
    /// Heads of aim and jepa (`--num_heads`, default 16).
    public var heads: Int = 16
    /// Classes of the classifier.
    public var classes: Int = 1000
    /// EP's `--d_out`: the values (and so the classifier's input) are D / d_out wide.
    public var dOut: Int = 1
    /// AB-MILP's variants (upstream's `--abmilp_*`).
    public var abmilp = ABMILPOptions()
    public init(dim: Int, tokens: Int, queries: Int = 32, heads: Int = 16, classes: Int = 1000) {
        self.dim = dim; self.tokens = tokens; self.queries = queries; self.heads = heads; self.classes = classes
    }
}

/// upstream's `ABMILPHead` options, as `probe_heads.py` passes them (defaults: upstream's).
public struct ABMILPOptions: Sendable, Equatable, Codable {
    /// `--abmilp_act`: the predictor's hidden activation.
    public enum Activation: String, Sendable, Codable, CaseIterable { case tanh, relu }
    /// `--abmilp_sa`: no self-attention, self-attention feeding the score predictor only (`map`),
    /// or feeding both the predictor and the pooled values (`both`).
    public enum SelfAttention: String, Sendable, Codable, CaseIterable { case none, map, both }
    public var activation = Activation.tanh
    public var selfAttention = SelfAttention.both
    /// `--abmilp_depth`: Linear layers in the score predictor (depth − 1 hidden ones).
    public var depth = 2
    /// `--abmilp_cond pe`: a fixed 2-D sin-cos position embedding added to the predictor's input.
    public var positionCondition = false
    /// `--abmilp_content patch`: the first token (the [CLS] of `abmilp_all`) is dropped.
    public var patchOnly = false
    public init() {}
    public var isDefault: Bool { self == ABMILPOptions() }
    /// The probe directory's suffix for a variant ("" for upstream's defaults).
    public var label: String {
        isDefault ? "" : "act-\(activation.rawValue)_sa-\(selfAttention.rawValue)_depth\(depth)\(positionCondition ? "_pe" : "")\(patchOnly ? "_patch" : "")"
    }
}

/// Errors building or loading heads: they name the head and the offending shapes or tensors.
public struct HeadError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// What a pooling returns: (B, W) features and, for attentive poolings, attention maps (B, Q, N).
public struct PoolingOutput<B: Backend> {
    public var features: Variable<B>
    public var attention: B.Value?
}

/// Named access to a head's tensors inside one graph.
public struct ParameterScope<B: Backend> {
    public let variables: [String: Variable<B>]
    public init(variables: [String: Variable<B>]) { self.variables = variables }
    public subscript(_ name: String) -> Variable<B> {
        get throws {
            guard let v = variables[name] else { throw HeadError("missing tensor '\(name)'") }
            return v
        }
    }
    public func optional(_ name: String) -> Variable<B>? { variables[name] }

    /// The variables under `prefix`, named without it (a module of a larger state dict).
    public func prefixed(_ prefix: String) -> ParameterScope<B> {
        var v: [String: Variable<B>] = [:]
        for (k, x) in variables where k.hasPrefix(prefix) { v[String(k.dropFirst(prefix.count))] = x }
        return ParameterScope(variables: v)
    }
}

/// A pooling module: parameters named as in the upstream state dict, and a forward written once
/// over the autodiff graph (so it runs on the GPU and, for checks, on the CPU reference).
public protocol Pooling: Sendable {
    /// Upstream name (`ep`, `simpool`, ...).
    var name: String { get }
    var options: HeadOptions { get }
    /// Width W of the pooled features.
    var outputWidth: Int { get }
    /// Every tensor of the pooling's state dict (parameters and buffers), without the `0.` prefix.
    var parameters: [ParameterSpec] { get }
    func forward<B: Backend>(_ g: Graph<B>, _ x: Variable<B>, _ p: ParameterScope<B>) throws -> PoolingOutput<B>
    /// Multiply-adds per image of the forward pass (the backward is about twice that).
    var forwardMACs: Int { get }
}

extension Pooling {
    public var outputWidth: Int { options.dim }
    public var trainableCount: Int { parameters.filter(\.trainable).map(\.count).reduce(0, +) }
}

// MARK: Shared building blocks

extension Graph {
    /// (B, L, H·dh) → (B, H, L, dh).
    func splitHeads(_ t: Variable<B>, heads: Int) throws -> Variable<B> {
        let s = shape(t)
        return try permute(try reshape(t, [s[0], s[1], heads, s[2] / heads]), [0, 2, 1, 3])
    }

    /// (B, H, L, dh) → (B, L, H·dh).
    func mergeHeads(_ t: Variable<B>) throws -> Variable<B> {
        let s = shape(t)
        return try reshape(try permute(t, [0, 2, 1, 3]), [s[0], s[2], s[1] * s[3]])
    }

    /// A (1, L, D) parameter repeated over the batch: (B, L, D).
    func batched(_ t: Variable<B>, _ batch: Int) throws -> Variable<B> {
        let s = shape(t)
        return try expand(t, [batch] + Array(s.dropFirst()))
    }

    /// Rows `[offset, offset + count)` of a (rows, in) weight (e.g. q of a packed qkv Linear).
    func rows(_ w: Variable<B>, _ offset: Int, _ count: Int) throws -> Variable<B> {
        try slice(w, axis: 0, offset..<(offset + count))
    }

    /// The weight rows and bias of output part `part` (of width `width`) of a packed Linear such as
    /// qkv or kv, as views whose gradients flow into the packed weight and bias.
    func packedPart(_ w: Variable<B>, _ b: Variable<B>?, part: Int, width: Int) throws -> (Variable<B>, Variable<B>?) {
        (try rows(w, part * width, width), try b.map { try slice($0, axis: 0, (part * width)..<((part + 1) * width)) })
    }

    /// Output part `part` (of width `width`) of a packed Linear: the same numbers as slicing its output.
    func packedLinear(_ x: Variable<B>, _ w: Variable<B>, _ b: Variable<B>?, part: Int, width: Int) throws -> Variable<B> {
        let (pw, pb) = try packedPart(w, b, part: part, width: width)
        return try linear(x, pw, pb)
    }

    /// Multi-head attention of (B, Lq, D) queries over (B, Lk, D) keys/values, merged back to (B, Lq, D).
    func multiHeadAttention(q: Variable<B>, k: Variable<B>, v: Variable<B>, heads: Int, scale: Float) throws -> (Variable<B>, B.Value) {
        let (o, probs) = try attention(q: try splitHeads(q, heads: heads), k: try splitHeads(k, heads: heads),
                                       v: try splitHeads(v, heads: heads), scale: scale)
        return (try mergeHeads(o), probs)
    }

    /// The PyTorch Linear `module` of a scope: `module.weight` and, when present, `module.bias`.
    func linear(_ x: Variable<B>, _ p: ParameterScope<B>, _ module: String) throws -> Variable<B> {
        try linear(x, try p["\(module).weight"], p.optional("\(module).bias"))
    }

    /// The weight rows and bias of output part `part` (of width `width`) of a packed Linear `module`.
    func linearPart(_ p: ParameterScope<B>, _ module: String, part: Int, width: Int) throws -> (Variable<B>, Variable<B>?) {
        try packedPart(try p["\(module).weight"], p.optional("\(module).bias"), part: part, width: width)
    }

    /// Output part `part` (of width `width`) of a packed Linear `module` (qkv, kv).
    func linear(_ x: Variable<B>, _ p: ParameterScope<B>, _ module: String, part: Int, width: Int) throws -> Variable<B> {
        try packedLinear(x, try p["\(module).weight"], p.optional("\(module).bias"), part: part, width: width)
    }

    /// The LayerNorm `module` of a scope (`module.weight`, `module.bias`).
    func layerNorm(_ x: Variable<B>, _ p: ParameterScope<B>, _ module: String, eps: Float) throws -> Variable<B> {
        try layerNorm(x, gamma: try p["\(module).weight"], beta: try p["\(module).bias"], eps: eps)
    }

    /// The BatchNorm `module` of a scope (`running_mean`, `running_var`, and `weight`, `bias` when
    /// affine) over every axis but `channelAxis`.
    func batchNorm(_ x: Variable<B>, _ p: ParameterScope<B>, _ module: String, channelAxis: Int, eps: Float) throws -> Variable<B> {
        try batchNorm(x, channelAxis: channelAxis, gamma: p.optional("\(module).weight"), beta: p.optional("\(module).bias"),
                      runningMean: try p["\(module).running_mean"].value, runningVar: try p["\(module).running_var"].value, eps: eps)
    }

    /// timm/PyTorch Mlp `module`: fc2(GELU(fc1(x))).
    func mlp(_ x: Variable<B>, _ p: ParameterScope<B>, _ module: String) throws -> Variable<B> {
        try linear(try activation(try linear(x, p, "\(module).fc1"), .gelu), p, "\(module).fc2")
    }
}

/// √N for grid poolings, or an error naming the head and N.
func squareGrid(_ head: String, _ tokens: Int) throws -> Int {
    let f = Int(Double(tokens).squareRoot().rounded())
    guard f * f == tokens else {
        throw HeadError("\(head) needs a square grid of patch tokens, got N = \(tokens) (is the [CLS] token included? `\(head)_all` is not available for grid heads)")
    }
    return f
}
