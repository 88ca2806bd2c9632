import Foundation
import ProbeTestSupport
import Testing
@testable import ProbeKernels

@Suite struct CopyTests {
    @Test func copiesTransposesConcatsAndConverts() throws {
        let ctx = try makeContext()
        let shape = [3, 7, 5]
        let x = randomValues(105, seed: 8)
        let t = try upload(ctx, x, shape)
        // Permute into a contiguous tensor.
        let out = try poisoned(ctx, [5, 3, 7])
        try ctx.copy(try t.permuted([2, 0, 1]), into: out)
        var want: [Double] = []
        for c in 0..<5 { for a in 0..<3 { for b in 0..<7 { want.append(x[(a * 7 + b) * 5 + c]) } } }
        try expectClose(ctx, out, want, "permute copy")
        try expectGuardIntact(ctx, out)
        // Slice + concat round trip.
        let parts = try [t.slice(axis: 1, 0..<2), t.slice(axis: 1, 2..<7)]
        let joined = try ctx.concat(parts, axis: 1)
        try expectClose(ctx, joined, x, "concat of slices")
        // f32 → f16 → f32.
        let h = try ctx.empty(shape, dtype: .f16)
        try ctx.copy(t, into: h)
        let back = try ctx.contiguous(h, dtype: .f32)
        try expectClose(ctx, back, f16Rounded(x), "f16 round trip", tolerance: 0)
        #expect(throws: OpError.self) { try ctx.copy(t, into: try ctx.empty([3, 5, 7])) }
        expectNoValidationMessages(ctx)
    }

    /// Four outputs per float4 store (flat, permuted, into slices of a wider tensor, converting),
    /// with the source read as a texel buffer or as a storage buffer; each against the reference
    /// and with the guard beyond the output intact.
    @Test(arguments: [true, false]) func vectorStoresWithEitherSource(texel: Bool) throws {
        let ctx = try makeContext { $0.gemmTexel = $0.gemmTexel && texel }
        let x = randomValues(3 * 8 * 4, seed: 9).map { Double(Float($0)) }   // exact in f32: copies are exact
        let t = try upload(ctx, x, [3, 8, 4])
        // Flat.
        let flat = try poisoned(ctx, [3, 8, 4])
        try ctx.copy(t, into: flat)
        try expectClose(ctx, flat, x, "flat copy", tolerance: 0)
        try expectGuardIntact(ctx, flat)
        // Permuted source, contiguous output with a last axis of 8.
        let out = try poisoned(ctx, [4, 3, 8])
        try ctx.copy(try t.permuted([2, 0, 1]), into: out)
        var want: [Double] = []
        for c in 0..<4 { for a in 0..<3 { for b in 0..<8 { want.append(x[(a * 8 + b) * 4 + c]) } } }
        try expectClose(ctx, out, want, "permute copy", tolerance: 0)
        try expectGuardIntact(ctx, out)
        // Into the second half of a (3, 16, 4) tensor: output strides 64, 4, 1.
        let wide = try ctx.tensor([Float](repeating: 7, count: 3 * 16 * 4), [3, 16, 4])
        try ctx.copy(t, into: try wide.slice(axis: 1, 8..<16))
        var wideWant = [Double](repeating: 7, count: 3 * 16 * 4)
        for a in 0..<3 { for b in 0..<8 { for c in 0..<4 { wideWant[(a * 16 + 8 + b) * 4 + c] = x[(a * 8 + b) * 4 + c] } } }
        try expectClose(ctx, wide, wideWant, "copy into a slice", tolerance: 0)
        // A contiguous output whose last axis (7) is not a multiple of 4: groups of four straddle rows.
        let y = randomValues(4 * 7 * 3, seed: 10).map { Double(Float($0)) }
        let ty = try upload(ctx, y, [4, 7, 3])
        let straddled = try poisoned(ctx, [3, 4, 7])
        try ctx.copy(try ty.permuted([2, 0, 1]), into: straddled)
        var yWant: [Double] = []
        for c in 0..<3 { for a in 0..<4 { for b in 0..<7 { yWant.append(y[(a * 7 + b) * 3 + c]) } } }
        try expectClose(ctx, straddled, yWant, "permute copy, rows of 7", tolerance: 0)
        try expectGuardIntact(ctx, straddled)
        // f32 → f16 → f32, permuted on the way back.
        let h = try ctx.empty([3, 8, 4], dtype: .f16)
        try ctx.copy(t, into: h)
        let back = try poisoned(ctx, [4, 3, 8])
        try ctx.copy(try h.permuted([2, 0, 1]), into: back)
        try expectClose(ctx, back, f16Rounded(want), "f16 round trip", tolerance: 0)
        expectNoValidationMessages(ctx)
    }
}
