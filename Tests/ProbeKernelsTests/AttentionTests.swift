import Foundation
import ProbeTestSupport
import Testing
@testable import ProbeKernels

@Suite struct AttentionTests {
    /// Self- and cross-attention over views of packed projections, with probabilities and backward.
    // Fused kernel (forced on, as on GPUs): (1, 2, 20, 9, 16) and (2, 1, 9, 9, 70); unfused
    // (GEMM → softmax → GEMM): D 200, and few query rows (Lq · ⌈Dv/chunk⌉ under a quarter of a
    // workgroup) for the rest. `attentionOnCPUPath` runs the lavapipe default (unfused throughout).
    @Test(arguments: [(1, 1, 1, 1, 4), (2, 3, 7, 5, 8), (1, 2, 1, 197, 16), (1, 2, 20, 9, 16), (2, 1, 9, 9, 70), (2, 2, 5, 7, 200)])
    func attentionForwardBackward(B: Int, H: Int, Lq: Int, Lk: Int, D: Int) throws {
        try forwardBackward(B: B, H: H, Lq: Lq, Lk: Lk, D: D, texel: true)
    }

    /// The same with q, k, v as storage buffers (where texel buffers are off or do not fit).
    @Test(arguments: [(1, 2, 20, 9, 16), (2, 1, 9, 9, 70)])
    func attentionOnStorageBuffers(B: Int, H: Int, Lq: Int, Lk: Int, D: Int) throws {
        try forwardBackward(B: B, H: H, Lq: Lq, Lk: Lk, D: D, texel: false)
    }

    @Test(arguments: [(1, 2, 20, 9, 16), (2, 1, 9, 9, 70)])
    func attentionOnCPUPath(B: Int, H: Int, Lq: Int, Lk: Int, D: Int) throws {
        try forwardBackward(B: B, H: H, Lq: Lq, Lk: Lk, D: D, texel: true, fused: false)
    }

    func forwardBackward(B: Int, H: Int, Lq: Int, Lk: Int, D: Int, texel: Bool, fused: Bool = true) throws {
        let ctx = try makeContext { $0.texelTwins = $0.texelTwins && texel; $0.attentionFused = fused }
        let BH = B * H, scale = 1 / Double(D).squareRoot()
        // K and V come packed as (B, Lk, 2, H, D), like a kv Linear's output.
        let q = randomValues(B * Lq * H * D, seed: 1, lo: -2, hi: 2)
        let kv = randomValues(B * Lk * 2 * H * D, seed: 2, lo: -2, hi: 2)
        let dOut = randomValues(BH * Lq * D, seed: 3)
        let tq = try upload(ctx, q, [B, Lq, H, D]).permuted([0, 2, 1, 3])
        let tkv = try upload(ctx, kv, [B, Lk, 2, H, D])
        let tk = try tkv.slice(axis: 2, 0..<1).squeezed(2).permuted([0, 2, 1, 3])
        let tv = try tkv.slice(axis: 2, 1..<2).squeezed(2).permuted([0, 2, 1, 3])
        // Dense (BH, L, D) copies for the reference.
        func dense(_ x: [Double], L: Int, part: Int?, parts: Int) -> [Double] {
            var out: [Double] = []
            for b in 0..<B { for h in 0..<H { for l in 0..<L { for d in 0..<D {
                out.append(part == nil ? x[((b * L + l) * H + h) * D + d] : x[(((b * L + l) * parts + part!) * H + h) * D + d])
            } } } }
            return out
        }
        let rq = dense(q, L: Lq, part: nil, parts: 1), rk = dense(kv, L: Lk, part: 0, parts: 2), rv = dense(kv, L: Lk, part: 1, parts: 2)
        let ref = Reference.attention(q: rq, k: rk, v: rv, BH: BH, Lq: Lq, Lk: Lk, D: D, Dv: D, scale: scale)
        let out = try poisoned(ctx, [B, H, Lq, D])
        let saved = try ctx.attention(q: tq, k: tk, v: tv, scale: Float(scale), into: out, saveProbabilities: true)
        try expectClose(ctx, out, ref.out, "attention out")
        try expectGuardIntact(ctx, out)
        try expectClose(ctx, try #require(saved).probs, ref.probs, "attention probabilities")
        // Without probabilities, same output.
        let out2 = try poisoned(ctx, [B, H, Lq, D])
        try ctx.attention(q: tq, k: tk, v: tv, scale: Float(scale), into: out2)
        try expectClose(ctx, out2, ref.out, "attention out (no probabilities)")
        // Backward into views of a packed gradient buffer (as the kv projection's gradient).
        let dkv = try ctx.tensor([Float](repeating: 0, count: kv.count), [B, Lk, 2, H, D])
        let dk = try dkv.slice(axis: 2, 0..<1).squeezed(2).permuted([0, 2, 1, 3])
        let dv = try dkv.slice(axis: 2, 1..<2).squeezed(2).permuted([0, 2, 1, 3])
        let dq = try poisoned(ctx, [B, H, Lq, D])
        try ctx.attentionBackward(q: tq, k: tk, v: tv, saved: saved!, scale: Float(scale), dOut: try upload(ctx, dOut, [B, H, Lq, D]),
                                  dq: dq, dk: dk, dv: dv)
        let (rdq, rdk, rdv) = Reference.attentionBackward(q: rq, k: rk, v: rv, BH: BH, Lq: Lq, Lk: Lk, D: D, Dv: D, scale: scale, dOut: dOut)
        try expectClose(ctx, dq, rdq, "dq")
        try expectGuardIntact(ctx, dq)
        try expectClose(ctx, try ctx.contiguous(dk), rdk, "dk")
        try expectClose(ctx, try ctx.contiguous(dv), rdv, "dv")
        expectNoValidationMessages(ctx)
    }

    @Test func mismatchedShapesAreNamed() throws {
        let ctx = try makeContext()
        do {
            try ctx.attention(q: try ctx.empty([1, 2, 3, 4]), k: try ctx.empty([1, 2, 5, 6]), v: try ctx.empty([1, 2, 5, 4]),
                              scale: 1, into: try ctx.empty([1, 2, 3, 4]))
            Issue.record("expected an error")
        } catch { #expect("\(error)".contains("attention") && "\(error)".contains("[1, 2, 5, 6]")) }
    }
}

/// fp16 storage (fp16 models): q, k, v and out in f16, arithmetic in f32. Against the reference
/// on the same f16-rounded inputs, only the output's rounding (2⁻¹¹ relative) separates them.
@Suite(.enabled(if: deviceHas16BitStorage, "16-bit storage")) struct AttentionF16Tests {
    @Test(arguments: [(1, 1, 1, 1, 4), (2, 3, 7, 5, 8), (1, 2, 9, 50, 16)])
    func attentionInF16(B: Int, H: Int, Lq: Int, Lk: Int, D: Int) throws {
        for fused in [true, false] { try attentionInF16(B: B, H: H, Lq: Lq, Lk: Lk, D: D, fused: fused) }
    }

    /// `fused`: the fused kernel (GPUs) or GEMM → softmax → GEMM (CPU devices).
    func attentionInF16(B: Int, H: Int, Lq: Int, Lk: Int, D: Int, fused: Bool) throws {
        let ctx = try makeContext { $0.attentionFused = fused }
        let BH = B * H, scale = 1 / Double(D).squareRoot()
        let q = f16Rounded(randomValues(BH * Lq * D, seed: 1, lo: -2, hi: 2))
        let k = f16Rounded(randomValues(BH * Lk * D, seed: 2, lo: -2, hi: 2))
        let v = f16Rounded(randomValues(BH * Lk * D, seed: 3, lo: -2, hi: 2))
        func up(_ x: [Double], _ s: [Int]) throws -> Tensor { try ctx.tensorF16(x.map { Float($0) }, s) }
        let out = try poisoned(ctx, [B, H, Lq, D], dtype: .f16)
        try ctx.attention(q: try up(q, [B, H, Lq, D]), k: try up(k, [B, H, Lk, D]), v: try up(v, [B, H, Lk, D]), scale: Float(scale), into: out)
        let ref = Reference.attention(q: q, k: k, v: v, BH: BH, Lq: Lq, Lk: Lk, D: D, Dv: D, scale: scale)
        try expectClose(ctx, out, ref.out, "attention f16", tolerance: fp16Tolerance)
        try expectGuardIntact(ctx, out)
        #expect(throws: OpError.self) {
            try ctx.attention(q: try up(q, [B, H, Lq, D]), k: try ctx.tensor(k.map { Float($0) }, [B, H, Lk, D]), v: try up(v, [B, H, Lk, D]), scale: 1, into: out)
        }
        expectNoValidationMessages(ctx)
    }
}
