/// Which tokens a head reads (upstream `--cls_features`).
public enum TokenSelection: Sendable, Equatable {
    /// (B, N, D) patch tokens: attentive poolings, and `lp_gap` (upstream `pos`, their mean).
    case patches
    /// (B, D) the [CLS] token: `lp_cls` (upstream's default linear probe, `cls`).
    case cls
    /// (B, 1 + N, D) [CLS] followed by the patches: `NAME_all`.
    case clsAndPatches
}

/// A head as users name it, resolved once: the pooling it builds and the tokens it reads.
///
/// - `lp` is upstream's default linear probe, on [CLS] (`--cls_features cls`); `lp_cls` says so
///   explicitly. `lp_gap` (alias `lp_pos`, upstream `pos`) is the linear probe on the mean of the
///   patch tokens.
/// - `NAME_all` is attentive pooling NAME over [CLS] followed by the patches.
public struct HeadName: Sendable, Equatable, CustomStringConvertible {
    /// The name as given (directories, logs and checkpoints use it).
    public let name: String
    /// The pooling's upstream name (`ep`, `simpool`, ...; `lp_cls` / `lp_gap` for linear probes).
    public let pooling: String
    public let selection: TokenSelection
    public var description: String { name }

    /// Every base name (each attentive one also as NAME_all).
    public static let known = ["ep", "lp", "lp_cls", "lp_gap", "abmilp", "simpool", "esimpool", "clip", "siglip", "aim",
                               "cbam", "coca", "cait", "dinovit", "jepa", "dolg", "cae", "ep_kproj"]

    public init(_ name: String) throws {
        self.name = name
        switch name {
        case "lp", "lp_cls": pooling = "lp_cls"; selection = .cls; return
        case "lp_gap", "lp_pos": pooling = "lp_gap"; selection = .patches; return
        default: break
        }
        let base = name.hasSuffix("_all") ? String(name.dropLast(4)) : name
        if base != name && base.hasPrefix("lp") {
            throw HeadError("\(name): linear probes read [CLS] (lp, lp_cls) or the mean of the patches (lp_gap); `_all` does not apply")
        }
        guard Self.known.contains(base) else {
            throw HeadError("unknown head '\(name)'; known: \(Self.known.joined(separator: ", ")) (attentive heads also as NAME_all)")
        }
        pooling = base
        selection = base == name ? .patches : .clsAndPatches
    }

    /// Tokens the pooling sees given N patch tokens.
    public func tokens(patches n: Int) -> Int {
        switch selection { case .patches: return n; case .cls: return 1; case .clsAndPatches: return n + 1 }
    }
}

/// Every head by its upstream name.
public enum Heads {
    /// Every head once (`lp` is spelled `lp_cls` here).
    public static var names: [String] { HeadName.known.filter { $0 != "lp" } }

    /// The pooling of head `name` (any name `HeadName` accepts). `options.tokens` is what the
    /// pooling sees (N + 1 with `_all`); grid heads refuse a count that is not a square.
    public static func pooling(_ name: String, _ options: HeadOptions) throws -> Pooling {
        let head = try HeadName(name)
        switch head.pooling {
        case "ep": return try EfficientProbing(options)
        case "ep_kproj": return try EfficientProbingKeyProjection(options)
        case "lp_gap": return LinearProbeFeatures(options, meanOfTokens: true)
        case "lp_cls": return LinearProbeFeatures(options, meanOfTokens: false)
        case "abmilp": return try ABMILP(options)
        case "simpool": return SimPool(options)
        case "esimpool": return try EfficientSimPool(options)
        case "clip": return try CLIPPool(options)
        case "siglip": return try SigLIPPool(options)
        case "aim": return try AIMPool(options)
        case "cbam": return try CBAMPool(options)
        case "coca": return CoCaPool(options)
        case "cait": return try CaiTPool(options)
        case "dinovit": return try DinoViTPool(options)
        case "jepa": return try JEPAPool(options)
        case "dolg": return try DOLGPool(options)
        case "cae": return try CAEPool(options)
        default: throw HeadError("unknown head '\(name)'")
        }
    }
}
