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
}
