import Foundation
import Testing
@testable import ProbeKernels

@Suite struct ReduceCopyTests {
    @Test func reductionsOverEveryAxis() throws {
        let ctx = try makeContext()
        for shape in [[1], [7], [197, 3], [3, 7, 5], [2, 1, 197]] {
            let x = randomValues(shape.reduce(1, *), seed: UInt64(shape.count))
            let t = try upload(ctx, x, shape)
            for axis in shape.indices {
                for op in [ReduceOp.sum, .mean, .max, .sumOfSquares] {
                    let (want, arg) = Reference.reduce(x, shape: shape, axis: axis, op)
                    var outShape = shape; outShape.remove(at: axis)
                    let out = try poisoned(ctx, outShape.isEmpty ? [1] : outShape)
                    let r = try ctx.reduce(t, axis: axis, op, into: out)
                    try expectClose(ctx, out, want, "\(op) over axis \(axis) of \(shape)")
                    try expectGuardIntact(ctx, out)
                    if op == .max { #expect(try ctx.readInt32(r.argmax!).map(Int.init) == arg) }
                }
            }
            // A permuted (non-contiguous) view reduces correctly too.
            if shape.count == 3 {
                let v = try t.permuted([2, 0, 1])
                let r = try ctx.reduce(v, axis: 2, .sum)
                var want: [Double] = []
                for c in 0..<shape[2] { for a in 0..<shape[0] { want.append((0..<shape[1]).map { x[(a * shape[1] + $0) * shape[2] + c] }.reduce(0, +)) } }
                try expectClose(ctx, r.values, want, "sum over a permuted view")
            }
        }
        expectNoValidationMessages(ctx)
    }

    @Test func sumOfSquaresOfCombination() throws {
        let ctx = try makeContext()
        for n in [1, 7, 197, 70_001] {
            let x = randomValues(n, seed: 5), y = randomValues(n, seed: 6)
            let out = try poisoned(ctx, [2])
            try ctx.sumOfSquares(try upload(ctx, x, [n]), into: out, at: 0)
            try ctx.sumOfSquares(try upload(ctx, x, [n]), plus: try upload(ctx, y, [n]), times: 0.3, into: out, at: 1)
            let want = [x.map { $0 * $0 }.reduce(0, +), zip(x, y).map { ($0 + 0.3 * $1) * ($0 + 0.3 * $1) }.reduce(0, +)]
            try expectClose(ctx, out, want, "sum of squares n=\(n)")
            try expectGuardIntact(ctx, out)
        }
        expectNoValidationMessages(ctx)
    }

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
