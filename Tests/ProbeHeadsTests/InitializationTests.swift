import Foundation
import ProbeAutodiff
import ProbeTestSupport
import SafeTensors
import Testing
@testable import ProbeHeads

/// Our initialisation of every head against upstream's: the head goldens carry the tensors
/// upstream's constructors produced (`0.<name>`), so each of ours, drawn with a fixed seed for the
/// same shapes, must match them in distribution.
///
/// - Constant initialisers (LayerNorm weight 1 and bias 0, zero query tokens, LayerScale 1e-5):
///   every value equal.
/// - Random ones (n ≥ 8 values): means within 6 standard errors of the difference of two sample
///   means (σ·√(2/n)), standard deviations within 6 standard errors (σ/√(2n) each, √2 for the
///   difference), and for n ≥ 2000 the kurtosis within 0.5 — which tells a uniform (1.8) from a
///   normal (3.0) or a normal truncated at ±2σ (2.4) — and the largest |value| of ours within
///   1.5× upstream's for n ≥ 256 (a uniform's support is its bound). Tensors of fewer than 8
///   random values (scalar biases) carry too little to compare.
@Suite struct InitializationTests {
    struct Moments { var mean = 0.0, std = 0.0, kurtosis = 0.0, maxAbs = 0.0 }

    static func moments(_ v: [Float]) -> Moments {
        let x = v.map(Double.init), n = Double(x.count)
        let mean = x.reduce(0, +) / n
        let m2 = x.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / n
        let m4 = x.map { pow($0 - mean, 4) }.reduce(0, +) / n
        return Moments(mean: mean, std: m2.squareRoot(), kurtosis: m2 > 0 ? m4 / (m2 * m2) : 0, maxAbs: x.map(abs).max() ?? 0)
    }

    /// Differences between our initialisation of `spec` (values `ours`) and upstream's (`theirs`).
    static func compare(_ name: String, constant: Bool, ours: [Float], theirs: [Float]) -> [String] {
        if constant {
            return Set(ours) == Set(theirs) && Set(ours).count == 1 ? []
                : ["\(name): ours is the constant \(ours.first ?? .nan), upstream's values are \(Set(theirs).sorted().prefix(3))"]
        }
        guard theirs.count >= 8 else { return [] }
        let a = moments(ours), b = moments(theirs), n = Double(theirs.count)
        let sigma = max(a.std, b.std)
        var problems: [String] = []
        if abs(a.mean - b.mean) > 6 * sigma * (2 / n).squareRoot() { problems.append("\(name): mean \(a.mean), upstream \(b.mean)") }
        if abs(a.std - b.std) > 6 * sigma / n.squareRoot() { problems.append("\(name): std \(a.std), upstream \(b.std)") }
        if n >= 2000, abs(a.kurtosis - b.kurtosis) > 0.5 { problems.append("\(name): kurtosis \(a.kurtosis), upstream \(b.kurtosis) (another distribution)") }
        if n >= 256, a.maxAbs > 1.5 * b.maxAbs + 1e-12 { problems.append("\(name): largest |value| \(a.maxAbs), upstream \(b.maxAbs)") }
        return problems
    }

    @Test(arguments: GoldenTests.files)
    func initialisationMatchesUpstream(_ fileName: String) throws {
        let golden = try HeadGolden(goldensDirectory.appendingPathComponent(fileName).path)
        let pooling = try Heads.pooling(golden.head, golden.options)
        let ours = try HeadParameters(specs: pooling.parameters, backend: CPUBackend(), seed: 2024)
        var problems: [String] = []
        for spec in pooling.parameters {
            let key = "0." + spec.name
            guard golden.file.entries[key] != nil else { problems.append("\(spec.name): not in the golden"); continue }
            // Buffers the golden's forward updated are compared as initialised (running stats 0 and 1).
            var constant = false
            if case .constant = spec.initializer { constant = true }
            problems += Self.compare(spec.name, constant: constant, ours: ours.values[spec.name]!.data.map { Float($0) }, theirs: try golden.file.floats(key))
        }
        #expect(problems.isEmpty, "\(golden.head) initialisation differs from upstream: \(problems.joined(separator: "; "))")
    }

    /// The comparison is not blind: the earlier dolg initialisation (PyTorch's default
    /// kaiming-uniform instead of upstream's N(0, √(2/fan_out))) and a truncation at ±2σ for a
    /// trunc_normal_ weight are rejected.
    @Test func aWrongInitialisationIsRejected() throws {
        let dolg = try HeadGolden(goldensDirectory.appendingPathComponent(try #require(GoldenTests.files.first { $0.hasPrefix("dolg_") })).path)
        let D = dolg.options.dim
        var rng = InitRNG(seed: 1)
        let uniform = rng.values(for: ParameterSpec("w", [D, D, 1, 1], .uniformFanIn(D)))
        #expect(!Self.compare("conv1.weight", constant: false, ours: uniform, theirs: try dolg.file.floats("0.conv1.weight")).isEmpty)
        let clip = try HeadGolden(goldensDirectory.appendingPathComponent(try #require(GoldenTests.files.first { $0.hasPrefix("clip_") })).path)
        let qkv = try clip.file.floats("0.qkv.weight")
        let tf = rng.values(for: ParameterSpec("w", [qkv.count], .truncNormalTF(std: 1 / Double(clip.options.dim).squareRoot())))
        #expect(!Self.compare("qkv.weight", constant: false, ours: tf, theirs: qkv).isEmpty)
    }
}
