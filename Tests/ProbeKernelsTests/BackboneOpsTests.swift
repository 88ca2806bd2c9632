import Foundation
import ProbeOps
import ProbeTestSupport
import Testing
@testable import ProbeKernels

/// The ops the newer ViT families add: RMSNorm (AIMv2), rotary embeddings (EVA-02, DINOv3, PE),
/// a bias on attention's scores (BEiT's relative position bias). SiLU (SwiGLU's gate) runs with
/// every activation in ElementwiseTests.
@Suite struct BackboneOpsTests {
    /// RMSNorm against the Double reference: f32 and f16 outputs, with and without γ, through the
    /// row kernels of every width (`rowShapes`), over rows of awkward lengths.
    @Test(arguments: rowShapes)
    func rmsNormMatchesReference(tpr: UInt32) throws {
        let ctx = try makeContext(variants: rowVariant(tpr))
        for (rows, cols) in rowCases where cols > 1 {
            let x = randomValues(rows * cols, seed: UInt64(rows * 7 + cols), lo: -2, hi: 3)
            let g = randomValues(cols, seed: 5, lo: 0.5, hi: 1.5)
            let tx = try upload(ctx, x, [rows, cols])
            let y = try poisoned(ctx, [rows, cols])
            try ctx.rmsNorm(tx, gamma: try upload(ctx, g, [cols]), eps: 1e-5, into: y)
            try expectClose(ctx, y, Reference.rmsNorm(x, cols: cols, gamma: g, eps: 1e-5), "rmsNorm \(rows)x\(cols)")
            try expectGuardIntact(ctx, y)
            let plain = try ctx.rmsNorm(tx, gamma: nil, eps: 1e-6).y
            try expectClose(ctx, plain, Reference.rmsNorm(x, cols: cols, gamma: nil, eps: 1e-6), "rmsNorm without γ \(rows)x\(cols)")
            guard deviceHas16BitStorage else { continue }
            let h = try poisoned(ctx, [rows, cols], dtype: .f16)
            try ctx.rmsNorm(tx, gamma: try upload(ctx, g, [cols]), eps: 1e-5, into: h)
            try expectClose(ctx, h, Reference.rmsNorm(x, cols: cols, gamma: g, eps: 1e-5), "rmsNorm → f16 \(rows)x\(cols)", tolerance: fp16Tolerance)
            try expectGuardIntact(ctx, h)
        }
        expectNoValidationMessages(ctx)
    }

    /// RoPE in place on q inside a packed (B, T, 3, H, hd) projection, for both pairings, f32 and
    /// f16, against the reference; its inverse (the backward) equals finite differences of the
    /// reference's ⟨dy, rope(x)⟩, and the neighbouring k and v are left alone.
    @Test(arguments: [(1, 1, 1, 2), (2, 5, 3, 8), (3, 7, 2, 6), (1, 17, 4, 16)])
    func ropeMatchesReference(B: Int, T: Int, H: Int, hd: Int) throws {
        let ctx = try makeContext()
        for half in [false, true] {
            for dtype in storageDTypes {
                let packed = randomValues(B * T * 3 * H * hd, seed: UInt64(B + T * 3 + hd), lo: -2, hi: 2)
                // Tables with equal entries per pair as timm's layouts make them, angle per (t, frequency).
                var cos = [Double](), sin = [Double]()
                for t in 0..<T {
                    for d in 0..<hd {
                        let f = half ? d % (hd / 2) : d / 2
                        let angle = Double(t + 1) * pow(10, -Double(f) / Double(hd / 2)) + 0.3
                        cos.append(Foundation.cos(angle)); sin.append(Foundation.sin(angle))
                    }
                }
                let stored = dtype == .f16 ? f16Rounded(packed) : packed
                let t = dtype == .f16 ? try ctx.tensorF16(stored.map { Float($0) }, [B, T, 3, H, hd]) : try upload(ctx, stored, [B, T, 3, H, hd])
                let q = try t.slice(axis: 2, 0..<1).squeezed(2)
                try ctx.rope(q, cos: try upload(ctx, cos, [T, hd]), sin: try upload(ctx, sin, [T, hd]), pairing: half ? .half : .interleaved)
                var dense: [Double] = []
                for b in 0..<B { for s in 0..<T { for h in 0..<H { for d in 0..<hd { dense.append(stored[(((b * T + s) * 3) * H + h) * hd + d]) } } } }
                let want = Reference.rope(dense, B: B, T: T, H: H, hd: hd, cos: cos, sin: sin, half: half)
                try expectClose(ctx, try ctx.contiguous(q), want, "rope \(half ? "half" : "interleaved") \(dtype) (\(B), \(T), \(H), \(hd))",
                                tolerance: dtype == .f16 ? fp16Tolerance : fp32Tolerance)
                let rest = try ctx.read(try ctx.contiguous(try t.slice(axis: 2, 1..<3)))
                var wantRest: [Float] = []
                for b in 0..<B { for s in 0..<T { for j in 1..<3 { for i in 0..<(H * hd) { wantRest.append(Float(stored[((b * T + s) * 3 + j) * H * hd + i])) } } } }
                #expect(rest == wantRest, "rope wrote outside q")
                if dtype == .f32 {
                    let dy = randomValues(dense.count, seed: 9)
                    let g = try upload(ctx, dy, [B, T, H, hd])
                    try ctx.rope(g, cos: try upload(ctx, cos, [T, hd]), sin: try upload(ctx, sin, [T, hd]), pairing: half ? .half : .interleaved, inverse: true)
                    let back = try ctx.read(g).map(Double.init)
                    expectGradientMatchesFiniteDifference(dense, dy: dy, forward: { Reference.rope($0, B: B, T: T, H: H, hd: hd, cos: cos, sin: sin, half: half) },
                                                          backward: back, "rope backward \(half ? "half" : "interleaved")")
                }
            }
        }
        expectNoValidationMessages(ctx)
    }

    @Test func ropeRefusesBadShapes() throws {
        let ctx = try makeContext()
        #expect(throws: OpError.self) { try ctx.rope(try ctx.empty([1, 2, 1, 3]), cos: try ctx.empty([2, 3]), sin: try ctx.empty([2, 3]), pairing: .half) }
        #expect(throws: OpError.self) { try ctx.rope(try ctx.empty([1, 2, 1, 4]), cos: try ctx.empty([3, 4]), sin: try ctx.empty([3, 4]), pairing: .half) }
    }

    /// Attention with an (H, Lq, Lk) bias on the scaled scores (BEiT) over views of a packed qkv,
    /// f32 and f16 storage, fused selection on or off (a bias always takes the unfused path).
    @Test(arguments: [(1, 1, 3, 4), (2, 3, 7, 8), (2, 2, 17, 16)])
    func attentionWithScoreBias(B: Int, H: Int, L: Int, D: Int) throws {
        for fused in [true, false] {
            let ctx = try makeContext { $0.attentionFused = fused }
            let scale = 1 / Double(D).squareRoot()
            let qkv = randomValues(B * L * 3 * H * D, seed: UInt64(L + D), lo: -2, hi: 2)
            let bias = randomValues(H * L * L, seed: 4, lo: -3, hi: 3)
            for dtype in storageDTypes {
                let stored = dtype == .f16 ? f16Rounded(qkv) : qkv
                let t = dtype == .f16 ? try ctx.tensorF16(stored.map { Float($0) }, [B, L, 3, H, D]) : try upload(ctx, stored, [B, L, 3, H, D])
                func part(_ j: Int) throws -> Tensor { try t.slice(axis: 2, j..<(j + 1)).squeezed(2).permuted([0, 2, 1, 3]) }
                func dense(_ j: Int) -> [Double] {
                    var out: [Double] = []
                    for b in 0..<B { for h in 0..<H { for l in 0..<L { for d in 0..<D { out.append(stored[(((b * L + l) * 3 + j) * H + h) * D + d]) } } } }
                    return out
                }
                let ref = Reference.attention(q: dense(0), k: dense(1), v: dense(2), BH: B * H, Lq: L, Lk: L, D: D, Dv: D, scale: scale, bias: bias)
                let out = try poisoned(ctx, [B, H, L, D], dtype: dtype)
                try ctx.attention(q: try part(0), k: try part(1), v: try part(2), scale: Float(scale), into: out, bias: try upload(ctx, bias, [H, L, L]))
                try expectClose(ctx, out, ref.out, "biased attention \(dtype) (\(B), \(H), \(L), \(D))", tolerance: dtype == .f16 ? fp16Tolerance : fp32Tolerance)
                try expectGuardIntact(ctx, out)
            }
            expectNoValidationMessages(ctx)
        }
    }
}
