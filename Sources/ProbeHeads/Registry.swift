/// Every head by its upstream name. A `_all` suffix means the tokens include [CLS] first
/// (N + 1 of them): the same pooling, fed differently; grid heads refuse it (N + 1 is no square).
public enum Heads {
    /// Names accepted by `pooling(_:_:)` (each also with `_all`, except the linear probes).
    public static let names = ["ep", "lp", "lp_cls", "abmilp", "simpool", "esimpool", "clip", "siglip", "aim",
                               "cbam", "coca", "cait", "dinovit", "jepa", "dolg", "cae", "ep_kproj"]

    public static func pooling(_ name: String, _ options: HeadOptions) throws -> Pooling {
        let base = name.hasSuffix("_all") ? String(name.dropLast(4)) : name
        if base != name && base.hasPrefix("lp") {
            throw HeadError("\(name): linear probes take the [CLS] token (lp_cls) or the mean of the patches (lp); `_all` does not apply")
        }
        switch base {
        case "ep": return try EfficientProbing(options)
        case "ep_kproj": return try EfficientProbingKeyProjection(options)
        case "lp", "lp_gap": return LinearProbeFeatures(options, meanOfTokens: true)
        case "lp_cls": return LinearProbeFeatures(options, meanOfTokens: false)
        case "abmilp": return ABMILP(options)
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
        default:
            throw HeadError("unknown head '\(name)'; known: \(names.joined(separator: ", ")) (attentive heads also as NAME_all)")
        }
    }
}
