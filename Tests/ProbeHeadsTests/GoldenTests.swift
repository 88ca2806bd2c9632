import Foundation
import ProbeAutodiff
import ProbeHeads
import ProbeKernels
import ProbeTestSupport
import SafeTensors
import Testing

/// What a head golden holds, read once.
struct HeadGolden {
    let path: String
    let head: String
    let options: HeadOptions
    let trainableParams: Int?
    let file: SafeTensorsFile
    /// Upstream's values by key (`expected.y`, `expected.grad.0.<name>`, `expected.0.<buffer>`, `expected.y_eval`).
    var expected: [String: [Float]]

    init(_ path: String) throws {
        let f = try SafeTensorsFile(path: path)
        file = f; self.path = path
        guard let name = metaString(f, "head"), let dim = metaInt(f, "dim"), let tokens = metaInt(f, "tokens") else {
            throw HeadError("\(path): metadata lacks head/dim/tokens")
        }
        head = name
        var o = HeadOptions(dim: dim, tokens: tokens, queries: metaInt(f, "queries") ?? 32, heads: metaInt(f, "heads") ?? 16)
        // Goldens of upstream's head options (EP's d_out, AB-MILP's variants); absent: the defaults.
        o.dOut = metaInt(f, "d_out") ?? 1
        if let a = metaString(f, "abmilp_act").flatMap(ABMILPOptions.Activation.init(rawValue:)) { o.abmilp.activation = a }
        if let sa = metaString(f, "abmilp_sa").flatMap(ABMILPOptions.SelfAttention.init(rawValue:)) { o.abmilp.selfAttention = sa }
        if let d = metaInt(f, "abmilp_depth") { o.abmilp.depth = d }
        o.abmilp.positionCondition = metaString(f, "abmilp_cond") == "pe"
        o.abmilp.patchOnly = metaString(f, "abmilp_content") == "patch"
        options = o
        trainableParams = metaInt(f, "trainable_params")
        var e: [String: [Float]] = [:]
        for k in f.names where k.hasPrefix("expected.") { e[k] = try f.floats(k) }
        expected = e
    }
}

/// Our values for everything a golden holds, computed on the device.
func headOutputs(_ golden: HeadGolden, pooling: Pooling, ctx: KernelContext) throws -> [String: [Float]] {
    let gpu = GPUBackend(ctx)
    let f = golden.file
    let params = try HeadParameters(specs: pooling.parameters, backend: gpu, file: f, prefix: "0.", what: "head \(golden.head)")
    let x = try gpu.constant(try f.floats("input.x"), try f.entry("input.x").shape)
    // Train mode: forward, backward of Σ y·dy, updated buffers.
    let g = Graph(gpu, training: true)
    let scope = params.scope(in: g)
    let out = try pooling.forward(g, g.input(x), scope)
    var ours: [String: [Float]] = ["expected.y": try gpu.toHost(out.features.value)]
    try g.backward(out.features, grad: try gpu.constant(try f.floats("input.dy"), try f.entry("input.dy").shape))
    for spec in pooling.parameters where spec.trainable {
        // A parameter the forward never uses (CAE's norm2_cross) has a zero gradient.
        ours["expected.grad.0.\(spec.name)"] = try scope.variables[spec.name]?.grad.map { try gpu.toHost($0) } ?? [Float](repeating: 0, count: spec.count)
    }
    for spec in pooling.parameters where !spec.trainable { ours["expected.0.\(spec.name)"] = try gpu.toHost(params.values[spec.name]!) }
    // Eval mode, with the updated buffers.
    let ge = Graph(gpu, training: false)
    ours["expected.y_eval"] = try gpu.toHost(try pooling.forward(ge, ge.input(x), params.scope(in: ge)).features.value)
    return ours
}

/// The golden bound, per tensor T of n elements, against upstream's value itself:
///
///     ‖ours − golden‖ ≤ rtol · ‖golden‖ + atol · S · √n
///
/// - rtol = 1e-5: two fp32 evaluations of a well-conditioned quantity differ by summation order
///   only, about √m·2⁻²⁴ relative for sums of m terms (≤ 1e-6 here), times the few-fold growth of
///   softmax and normalisation chains.
/// - S stands for the size of the terms T is summed from, so that a gradient whose terms cancel —
///   exactly zero in exact arithmetic (a bias before a softmax or a training-mode BatchNorm), or
///   nearly so (abmilp's `attention_predictor.0.bias`: 1e-3 from exact in upstream's own fp32) — is
///   judged against the size of its terms, not of its result. A bias's terms are the rows of the
///   gradient arriving at its module, whose products with the module's inputs make the module's
///   weight gradient: for a bias, S is the largest golden gradient element of its module (a
///   Linear's or LayerNorm's weight and bias). For any other tensor (weights, tokens, outputs,
///   buffers), S = max |golden T|: its terms are of its own size, and LayerScale-damped modules
///   (cait's block) or small inputs (jepa's query) keep their own, small scale.
/// - atol = 2⁻²⁴ · 4096 ≈ 2.4e-4: Higham's bound on the rounding of a sum of m terms, γₘ ≈ m·2⁻²⁴
///   times their size, for m up to 4096 (batch × tokens of these goldens and of the larger ones
///   the check was tried on).
///
/// Nothing here is computed by this project: the CPU backend (Double) is never the reference.
/// `PROBE_GOLDEN_REPORT=1` prints each tensor's error and bound.
struct GoldenBound {
    static let rtol = 1e-5
    static let atol = 4096.0 / Double(1 << 24)

    /// The module of a gradient key (`expected.grad.0.self_attn.qkv.weight` → `self_attn.qkv`).
    static func module(_ key: String) -> String {
        let parts = key.dropFirst("expected.grad.0.".count).split(separator: ".")
        return parts.count > 1 ? parts.dropLast().joined(separator: ".") : parts.joined()
    }

    /// The term size S of `key` in `golden`.
    static func termScale(_ golden: HeadGolden, _ key: String) -> Double {
        guard key.hasPrefix("expected.grad."), key.hasSuffix(".bias") else { return maxAbs(golden.expected[key]!) }
        let m = module(key)
        return golden.expected.filter { $0.key.hasPrefix("expected.grad.") && module($0.key) == m }.values.map(maxAbs).max() ?? 0
    }

    /// The bound of `key` in `golden`.
    static func bound(_ golden: HeadGolden, _ key: String) -> Double {
        let want = golden.expected[key]!
        return rtol * norm(want) + atol * termScale(golden, key) * Double(want.count).squareRoot()
    }

    /// Failures (empty: within the bound) of `ours` against `golden`.
    static func check(_ golden: HeadGolden, _ ours: [String: [Float]], report: Bool = false) -> [String] {
        var failures: [String] = []
        for key in golden.expected.keys.sorted() {
            let want = golden.expected[key]!
            guard let got = ours[key] else { failures.append("\(golden.head): \(key) is in the golden but not computed here"); continue }
            guard got.count == want.count else { failures.append("\(golden.head): \(key) has \(got.count) values, upstream \(want.count)"); continue }
            let diff = distance(got, want)
            let b = bound(golden, key)
            if report {
                print(String(format: "golden %@ %@: ‖Δ‖ %.3e, relative %.3e, bound %.3e (%.3f of it)", golden.head, key, diff,
                             diff / max(norm(want), 1e-300), b, diff / max(b, 1e-300)))
            }
            if !(diff <= b) {
                failures.append("\(golden.head): \(key.dropFirst("expected.".count)) differs from upstream by \(diff) (relative \(diff / max(norm(want), 1e-300))), bound \(b)")
            }
        }
        for key in ours.keys.sorted() where golden.expected[key] == nil && key.hasPrefix("expected.grad.") {
            failures.append("\(golden.head): \(key) is a trainable parameter here but has no gradient in the golden")
        }
        return failures
    }
}

/// Checks one head golden with the real head, returning the failures.
func checkHeadGolden(_ golden: HeadGolden, pooling: Pooling? = nil, ctx: KernelContext) throws -> [String] {
    let p = try pooling ?? Heads.pooling(golden.head, golden.options)
    var failures: [String] = []
    if pooling == nil, let count = golden.trainableParams, p.trainableCount != count {
        failures.append("\(golden.head): \(p.trainableCount) trainable parameters, upstream \(count)")
    }
    let report = ProcessInfo.processInfo.environment["PROBE_GOLDEN_REPORT"] == "1"
    return failures + GoldenBound.check(golden, try headOutputs(golden, pooling: p, ctx: ctx), report: report && pooling == nil)
}

@Suite(.serialized) struct GoldenTests {
    static let files = goldenFiles { if case .head = $0 { return true } else { return false } }

    @Test func headGoldensArePresent() {
        #expect(!Self.files.isEmpty, "no head goldens (<head>_<tag>.safetensors) in \(goldensDirectory.path) (set PROBE_GOLDENS)")
    }

    @Test(arguments: files)
    func golden(_ fileName: String) throws {
        let golden = try HeadGolden(goldensDirectory.appendingPathComponent(fileName).path)
        let ctx = try makeContext()
        let failures = try checkHeadGolden(golden, ctx: ctx)
        for f in failures { Issue.record(Comment(rawValue: "\(fileName): \(f)")) }
        expectNoValidationMessages(ctx)
    }
}

/// Goldens of upstream's head options kept in the repository (`Tests/Goldens/heads`, written by
/// `make_head_goldens.py --d-out / --abmilp-*` from upstream's modules): EP with d_out 2, AB-MILP
/// without self-attention, with it on the map only, ReLU, depth 1 and 3, the position
/// condition, patch-only content — each through the same bound as the shared goldens.
@Suite(.serialized) struct HeadOptionGoldenTests {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Goldens/heads")
    static let files = ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.hasSuffix(".safetensors") }.sorted()

    @Test func present() { #expect(Self.files.count >= 7, "\(Self.files)") }

    @Test(arguments: files)
    func golden(_ fileName: String) throws {
        let golden = try HeadGolden(Self.dir.appendingPathComponent(fileName).path)
        let ctx = try makeContext()
        let failures = try checkHeadGolden(golden, ctx: ctx)
        for f in failures { Issue.record(Comment(rawValue: "\(fileName): \(f)")) }
        // Fixed buffers built here (AB-MILP's sin-cos position embedding) equal upstream's.
        for spec in try Heads.pooling(golden.head, golden.options).parameters {
            guard case let .values(v) = spec.initializer else { continue }
            let err = relativeError(v, try golden.file.floats("0." + spec.name))
            #expect(err <= 1e-6, "\(fileName): \(spec.name) differs from upstream's by \(err)")
        }
        expectNoValidationMessages(ctx)
    }
}
