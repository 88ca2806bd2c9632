import Foundation
import ProbeAutodiff
import ProbeKernels
import ProbeTestSupport
import SafeTensors
import Testing
@testable import ProbeHeads

// The golden check must reject what is wrong: heads that differ from upstream in ways their
// zero-initialised or LayerScale-damped parameters hide, and goldens that were tampered with.

/// A head that treats one of its parameters as the constant zero (it "ignores" it: its
/// gradient never reaches it).
struct IgnoringParameter: Pooling {
    let base: Pooling
    let ignored: String
    var name: String { base.name }
    var options: HeadOptions { base.options }
    var parameters: [ParameterSpec] { base.parameters }
    var forwardMACs: Int { base.forwardMACs }
    func forward<B>(_ g: Graph<B>, _ x: Variable<B>, _ p: ParameterScope<B>) throws -> PoolingOutput<B> {
        var vars = p.variables
        let v = try p[ignored]
        vars[ignored] = g.constant(try g.backend.zeros(g.shape(v)))
        return try base.forward(g, x, ParameterScope(variables: vars))
    }
}

/// cait with 8 heads instead of 4.
struct CaiTWithEightHeads: Pooling {
    let real: CaiTPool
    var name: String { "cait" }
    var options: HeadOptions { real.options }
    var parameters: [ParameterSpec] { real.parameters }
    var forwardMACs: Int { 0 }
    func forward<B>(_ g: Graph<B>, _ x: Variable<B>, _ p: ParameterScope<B>) throws -> PoolingOutput<B> {
        let s = g.shape(x), D = options.dim, heads = 8
        let c = try g.batched(try p["cls_token"], s[0])
        let blk = p.prefixed("blocks_token_only.0.")
        let u = try g.layerNorm(try g.concat([c, x], axis: 1), blk, "norm1", eps: 1e-6)
        let q = try g.linear(try g.slice(u, axis: 1, 0..<1), blk, "attn.q"), k = try g.linear(u, blk, "attn.k"), v = try g.linear(u, blk, "attn.v")
        let (o, probs) = try g.multiHeadAttention(q: q, k: k, v: v, heads: heads, scale: 1 / Float(D / heads).squareRoot())
        let c1 = try g.add(c, try g.mul(try g.linear(o, blk, "attn.proj"), try blk["gamma_1"]))
        let c2 = try g.add(c1, try g.mul(try g.mlp(try g.layerNorm(c1, blk, "norm2", eps: 1e-6), blk, "mlp"), try blk["gamma_2"]))
        return PoolingOutput(features: try g.reshape(try g.layerNorm(c2, p, "norm", eps: 1e-5), [s[0], D]), attention: probs)
    }
}

/// EP with the softmax scaled by 1/√(D/Q) (a per-query width) instead of 1/√D.
struct EPWithWrongScale: Pooling {
    let real: EfficientProbing
    var name: String { "ep" }
    var options: HeadOptions { real.options }
    var parameters: [ParameterSpec] { real.parameters }
    var forwardMACs: Int { 0 }
    func forward<B>(_ g: Graph<B>, _ x: Variable<B>, _ p: ParameterScope<B>) throws -> PoolingOutput<B> {
        let (D, Q) = (options.dim, options.queries), c = D / Q
        let attn = try g.softmax(try g.matmul(try g.reshape(try p["cls_token"], [Q, D]), x, transB: true, alpha: 1 / Float(c).squareRoot()))
        let perQuery = try g.permute(try g.matmul(attn, x), [1, 0, 2])
        let y = try g.matmul(perQuery, try g.reshape(try p["v.weight"], [Q, c, D]), transB: true)
        return PoolingOutput(features: try g.reshape(try g.permute(y, [1, 0, 2]), [g.shape(x)[0], D]), attention: attn.value)
    }
}

/// jepa without the residual around its MLP (q2 = mlp(LN2 q1)).
struct JEPAWithoutResidual: Pooling {
    let real: JEPAPool
    var name: String { "jepa" }
    var options: HeadOptions { real.options }
    var parameters: [ParameterSpec] { real.parameters }
    var forwardMACs: Int { 0 }
    func forward<B>(_ g: Graph<B>, _ x: Variable<B>, _ p: ParameterScope<B>) throws -> PoolingOutput<B> {
        let s = g.shape(x), D = options.dim, H = options.heads
        let query = try g.batched(try p["query_tokens"], s[0])
        let blk = p.prefixed("cross_attention_block.")
        let xn = try g.layerNorm(x, blk, "norm1", eps: 1e-5)
        let k = try g.linear(xn, blk, "xattn.kv", part: 0, width: D), v = try g.linear(xn, blk, "xattn.kv", part: 1, width: D)
        let (o, probs) = try g.multiHeadAttention(q: try g.linear(query, blk, "xattn.q"), k: k, v: v, heads: H, scale: 1 / Float(D / H).squareRoot())
        let q1 = try g.add(query, try g.linear(o, blk, "xattn.proj"))
        let q2 = try g.mlp(try g.layerNorm(q1, blk, "norm2", eps: 1e-5), blk, "mlp")
        return PoolingOutput(features: try g.reshape(q2, [s[0], D]), attention: probs)
    }
}

/// cae with the query's LayerNorm at eps 1e-6 instead of 1e-5.
struct CAEWithWrongEps: Pooling {
    let real: CAEPool
    var name: String { "cae" }
    var options: HeadOptions { real.options }
    var parameters: [ParameterSpec] { real.parameters }
    var forwardMACs: Int { 0 }
    func forward<B>(_ g: Graph<B>, _ x: Variable<B>, _ p: ParameterScope<B>) throws -> PoolingOutput<B> {
        let s = g.shape(x), D = options.dim, H = CAEPool.heads
        let qIn = try g.layerNorm(try g.batched(try p["query_token"], s[0]), p, "norm1_q", eps: 1e-6)
        let q = try g.linear(qIn, p, "cross_attn.q")
        let k = try g.linear(try g.layerNorm(x, p, "norm1_k", eps: 1e-5), p, "cross_attn.k")
        let v = try g.linear(try g.layerNorm(x, p, "norm1_v", eps: 1e-5), p, "cross_attn.v")
        let (o, probs) = try g.multiHeadAttention(q: q, k: k, v: v, heads: H, scale: 1 / Float(D / H).squareRoot())
        return PoolingOutput(features: try g.reshape(try g.linear(o, p, "cross_attn.proj"), [s[0], D]), attention: probs)
    }
}

/// cbam without the residual (relu(gated) instead of relu(gated + input)).
struct CBAMWithoutResidual: Pooling {
    let real: CBAMPool
    var name: String { "cbam" }
    var options: HeadOptions { real.options }
    var parameters: [ParameterSpec] { real.parameters }
    var forwardMACs: Int { 0 }
    func forward<B>(_ g: Graph<B>, _ x: Variable<B>, _ p: ParameterScope<B>) throws -> PoolingOutput<B> {
        let s = g.shape(x), (Bn, N, D) = (s[0], s[1], s[2]), r = real.reduced
        let F = try squareGrid("cbam", N)
        let xc = try g.permute(x, [0, 2, 1])
        let fc1 = try g.reshape(try p["channel.fc1.weight"], [r, D]), fc2 = try g.reshape(try p["channel.fc2.weight"], [D, r])
        func channelMLP(_ v: Variable<B>) throws -> Variable<B> { try g.linear(try g.activation(try g.linear(v, fc1, nil), .relu), fc2, nil) }
        let gateC = try g.activation(try g.add(try channelMLP(try g.mean(xc, axis: 2)), try channelMLP(try g.amax(xc, axis: 2))), .sigmoid)
        let x1 = try g.mul(xc, try g.reshape(gateC, [Bn, D, 1]))
        let pooled = try g.concat([try g.reshape(try g.mean(x1, axis: 1), [Bn, 1, F, F]), try g.reshape(try g.amax(x1, axis: 1), [Bn, 1, F, F])], axis: 1)
        let bn = try g.batchNorm(try g.conv2d(pooled, try p["spatial.conv.conv.weight"], padding: 3), p, "spatial.conv.bn", channelAxis: 1, eps: 1e-5)
        let gateS = try g.activation(try g.reshape(bn, [Bn, 1, N]), .sigmoid)
        return PoolingOutput(features: try g.mean(try g.activation(try g.mul(x1, gateS), .relu), axis: 2), attention: gateS.value)
    }
}

@Suite(.serialized) struct MutationTests {
    /// The golden of `head` among the shared ones.
    func golden(_ head: String) throws -> HeadGolden {
        let file = try #require(GoldenTests.files.first { GoldenKind(fileName: $0) == .head(head) }, "no \(head) golden")
        return try HeadGolden(goldensDirectory.appendingPathComponent(file).path)
    }

    static let mutants: [(String, String)] = [
        ("cait", "8 attention heads instead of 4"), ("clip", "ignores qkv.bias"), ("cae", "ignores query_token"),
        ("ep", "softmax scale 1/√(D/Q)"), ("jepa", "no residual around the MLP"), ("cae", "query LayerNorm eps 1e-6"),
        ("cbam", "no residual"),
    ]

    @Test(arguments: mutants)
    func mutantHeadsFailTheGoldenCheck(_ head: String, _ mutation: String) throws {
        let g = try golden(head)
        let real = try Heads.pooling(head, g.options)
        let mutant: Pooling
        switch (head, mutation) {
        case ("cait", _): mutant = CaiTWithEightHeads(real: real as! CaiTPool)
        case ("clip", _): mutant = IgnoringParameter(base: real, ignored: "qkv.bias")
        case ("cae", "ignores query_token"): mutant = IgnoringParameter(base: real, ignored: "query_token")
        case ("ep", _): mutant = EPWithWrongScale(real: real as! EfficientProbing)
        case ("jepa", _): mutant = JEPAWithoutResidual(real: real as! JEPAPool)
        case ("cae", _): mutant = CAEWithWrongEps(real: real as! CAEPool)
        default: mutant = CBAMWithoutResidual(real: real as! CBAMPool)
        }
        let ctx = try makeContext()
        #expect(try checkHeadGolden(g, ctx: ctx).isEmpty, "the real \(head) must pass")
        let failures = try checkHeadGolden(g, pooling: mutant, ctx: ctx)
        #expect(!failures.isEmpty, "\(head) that \(mutation) passed the golden check")
        expectNoValidationMessages(ctx)
    }

    /// Every gradient of every head golden, negated, scaled by 1.05, zeroed or permuted, is
    /// rejected — wherever the golden resolves a 5% change at all. A gradient that is exactly zero
    /// in exact arithmetic is fp32 noise in upstream's run too; changing noise is not detectable
    /// by any bound, and such tensors are listed, not silently skipped.
    @Test(arguments: GoldenTests.files)
    func tamperedGoldensFail(_ fileName: String) throws {
        let g = try HeadGolden(goldensDirectory.appendingPathComponent(fileName).path)
        let ctx = try makeContext()
        let ours = try headOutputs(g, pooling: try Heads.pooling(g.head, g.options), ctx: ctx)
        #expect(GoldenBound.check(g, ours).isEmpty)
        var checked = 0, noise: [String] = []
        for key in g.expected.keys.sorted() where key.hasPrefix("expected.grad.") {
            let want = g.expected[key]!
            guard 0.05 * norm(want) > 2 * GoldenBound.bound(g, key) else { noise.append(key); continue }
            let mutations: [(String, [Float])] = [("negated", want.map { -$0 }), ("scaled by 1.05", want.map { $0 * 1.05 }),
                                                  ("zeroed", want.map { _ in 0 }), ("permuted", want.reversed())]
            for (what, values) in mutations where values != want {
                var tampered = g
                tampered.expected[key] = values
                #expect(!GoldenBound.check(tampered, ours).isEmpty, "\(fileName): \(key) \(what) passed")
            }
            checked += 1
        }
        #expect(checked > 0, "\(fileName): no gradient resolves a 5% change")
        if !noise.isEmpty { print("\(fileName): gradients at fp32 noise level (exactly zero upstream up to rounding): \(noise)") }
        expectNoValidationMessages(ctx)
    }

    /// As a new user would: a golden file whose largest gradient was negated, on disk, through
    /// the whole golden test path.
    @Test func aTamperedGoldenFileFails() throws {
        let source = try golden("abmilp")
        let f = source.file
        let key = source.expected.filter { $0.key.hasPrefix("expected.grad.") }.max { norm($0.value) < norm($1.value) }!.key
        var w = SafeTensorsWriter()
        w.metadata = f.metadata
        for name in f.names {
            let e = try f.entry(name)
            let values = try f.floats(name)
            w.add(name, name == key ? values.map { -$0 } : values, shape: e.shape)
        }
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("abmilp_tampered.safetensors").path
        try w.write(to: path)
        let failures = try checkHeadGolden(try HeadGolden(path), ctx: try makeContext())
        #expect(failures.contains { $0.contains(String(key.dropFirst("expected.".count))) }, "\(failures)")
    }
}
