import Foundation
import ProbeTestSupport
import Testing
@testable import ProbeKernels

@Suite struct ReduceTests {
    /// x read as a texel buffer (lavapipe's default) or as a storage buffer; reduced axes of 197
    /// take the sixteen-at-a-time path of sums and its tail. Inner sizes in fours take the texel
    /// path's four-outputs-per-invocation sums ((2, 197, 8): its eight-at-a-time loop and tail).
    @Test(arguments: [true, false]) func reductionsOverEveryAxis(texel: Bool) throws {
        let ctx = try makeContext { $0.texelTwins = $0.texelTwins && texel }
        // (3, 7, 8) and (2, 13, 12): inner sizes in fours.
        for shape in [[1], [7], [197, 3], [3, 7, 5], [2, 1, 197], [3, 7, 8], [2, 13, 12], [2, 197, 8]] {
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

    /// The gradient of a max: dy at the argmax (the first maximum on ties), zero elsewhere.
    @Test func maxBackwardScattersToTheArgmax() throws {
        let ctx = try makeContext()
        for shape in [[1], [7], [3, 7, 5], [2, 1, 197]] {
            var x = randomValues(shape.reduce(1, *), seed: 3)
            if x.count > 2 { x[1] = x[0] }
            let t = try upload(ctx, x, shape)
            for axis in shape.indices {
                let r = try ctx.reduce(t, axis: axis, .max)
                let (_, arg) = Reference.reduce(x, shape: shape, axis: axis, .max)
                let outer = shape[..<axis].reduce(1, *), R = shape[axis], inner = shape[(axis + 1)...].reduce(1, *)
                let dy = randomValues(outer * inner, seed: 4)
                var want = [Double](repeating: 0, count: x.count)
                for o in 0..<outer { for j in 0..<inner { want[(o * R + arg[o * inner + j]) * inner + j] = dy[o * inner + j] } }
                let dx = try ctx.maxBackward(try upload(ctx, dy, Array(r.values.shape)), argmax: r.argmax!, shape: shape, axis: axis)
                try expectClose(ctx, dx, want, "maxBackward over axis \(axis) of \(shape)")
                let fd = finiteDifference(x) { xs in dot(dy, Reference.reduce(xs, shape: shape, axis: axis, .max).0) }
                if !(x.count > 2 && axis == shape.count - 1) {   // ties make the max non-differentiable
                    #expect(relativeError(want, fd) <= 1e-6, "maxBackward vs finite differences over axis \(axis) of \(shape)")
                }
            }
        }
        expectNoValidationMessages(ctx)
    }
}
