import Foundation
import ProbeAutodiff
import ProbeHeads
import SafeTensors
import ProbeTestSupport
import Testing

/// Gradients of the head in a golden file on a backend, by parameter name (plus "y").
func headGradients<B: Backend>(_ path: String, _ backend: B) throws -> [String: [Float]] {
    let f = try SafeTensorsFile(path: path)
    let name = (f.metadata["head"] ?? "").trimmingCharacters(in: CharacterSet(charactersIn: "\""))
    let options = HeadOptions(dim: metaInt(f, "dim")!, tokens: metaInt(f, "tokens")!, queries: metaInt(f, "queries") ?? 32, heads: metaInt(f, "heads") ?? 16)
    let pooling = try Heads.pooling(name, options)
    let params = try HeadParameters(specs: pooling.parameters, backend: backend, file: f, prefix: "0.", what: name)
    let g = Graph(backend, training: true)
    let scope = params.scope(in: g)
    let out = try pooling.forward(g, g.input(try backend.constant(try f.floats("input.x"), try f.entry("input.x").shape)), scope)
    try g.backward(out.features, grad: try backend.constant(try f.floats("input.dy"), try f.entry("input.dy").shape))
    var r: [String: [Float]] = ["y": try backend.toHost(out.features.value)]
    for s in pooling.parameters where s.trainable { if let gr = scope.variables[s.name]?.grad { r[s.name] = try backend.toHost(gr) } }
    return r
}


/// Every head's backward, on the CPU reference in Double, against central finite differences of
/// its forward: for each parameter tensor (and the input tokens) the directional derivative along a
/// random direction u, (L(θ + h u) − L(θ − h u)) / 2h with L = Σ w ⊙ y, must equal ⟨∂L/∂θ, u⟩.
@Suite struct HeadGradientCheckTests {
    static let heads = Heads.names.filter { $0 != "lp_cls" } + ["ep_all", "simpool_all"]

    @Test(arguments: heads)
    func backwardMatchesFiniteDifferences(_ head: String) throws {
        // D = 24 divides every head count used (4, 8, 12; aim/jepa get 4); N = 9 is a 3×3 grid.
        let tokens = head.hasSuffix("_all") ? 10 : 9
        let options = HeadOptions(dim: 24, tokens: tokens, queries: 4, heads: 4, classes: 5)
        let pooling = try Heads.pooling(head, options)
        let cpu = CPUBackend()
        let params = try HeadParameters(specs: pooling.parameters, backend: cpu, seed: 42)
        // Non-trivial values for zero/one-initialised tensors (query tokens, LayerScale, norms).
        var rng = InitRNG(seed: 7)
        for s in pooling.parameters where s.trainable {
            params.values[s.name]!.data = rng.values(for: ParameterSpec(s.name, s.shape, .normal(std: 0.3))).enumerated().map {
                params.values[s.name]!.data[$0.offset] + Double($0.element)
            }
        }
        let batch = 3
        let x = HostTensor(rng.values(for: ParameterSpec("x", [batch, tokens, 24], .normal(std: 1))).map(Double.init), [batch, tokens, 24])
        let w = HostTensor(rng.values(for: ParameterSpec("w", [batch, pooling.outputWidth], .normal(std: 1))).map(Double.init), [batch, pooling.outputWidth])
        let baseLoss: Double
        func loss() throws -> Double {
            let g = Graph(cpu, training: true)
            let y = try pooling.forward(g, g.input(x), params.scope(in: g)).features.value
            return zip(y.data, w.data).map(*).reduce(0, +)
        }
        let g = Graph(cpu, training: true)
        let scope = params.scope(in: g)
        let xv = g.input(x, requiresGrad: true)
        let out = try pooling.forward(g, xv, scope)
        try g.backward(out.features, grad: w)
        baseLoss = try loss()
        var targets: [(String, HostTensor, HostTensor?)] = [("input", x, xv.grad)]
        for s in pooling.parameters where s.trainable { targets.append((s.name, params.values[s.name]!, scope.variables[s.name]!.grad)) }
        for (name, tensor, grad) in targets {
            let u = rng.values(for: ParameterSpec("u", [tensor.count], .normal(std: 1))).map(Double.init)
            let analytic = grad.map { zip($0.data, u).map(*).reduce(0, +) } ?? 0
            let h = 1e-5, saved = tensor.data
            tensor.data = zip(saved, u).map { $0 + h * $1 }
            let lp = try loss()
            tensor.data = zip(saved, u).map { $0 - h * $1 }
            let lm = try loss()
            tensor.data = saved
            let numeric = (lp - lm) / (2 * h)
            // Central differences in Double: truncation O(h²) ~ 1e-10 relative; cancellation
            // ε·|L|/h ≈ 2e-11·|L| absolute (what exactly-zero derivatives come out as), so the
            // bound is 1e-5 relative plus 1e-9·max(1, |L|) absolute.
            let bound = 1e-5 * max(abs(numeric), abs(analytic)) + 1e-9 * max(1, abs(baseLoss))
            #expect(abs(numeric - analytic) <= bound, "\(head): ∂L/∂\(name) along a random direction: backward \(analytic), finite differences \(numeric)")
        }
    }
}
