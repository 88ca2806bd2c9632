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

@Suite struct OversizedOperandTests {
    /// A (3, 2900, 4096) tensor is 142 MB, beyond lavapipe's 128 MiB maxStorageBufferRange: reduce,
    /// softmax and LayerNorm split it instead of failing or binding out of range.
    @Test func rowOpsAndReductionsSplitOversizedTensors() throws {
        let ctx = try makeContext()
        let shape = [3, 2900, 4096]
        let n = shape.reduce(1, *)
        try #require(n * 4 > ctx.device.capabilities.maxStorageBufferRange || ctx.device.capabilities.maxStorageBufferRange > 1 << 30)
        var s: UInt32 = 99
        // Positive values: a well-conditioned mean (zero-mean data would measure cancellation, not the kernel).
        let host = (0..<n).map { _ -> Float in s = s &* 1664525 &+ 1013904223; return Float(s >> 9) / Float(1 << 23) }
        let x = try ctx.tensor(host, shape)
        // Mean over the middle axis.
        let m = try ctx.read(try ctx.reduce(x, axis: 1, .mean).values)
        var want = [Double](repeating: 0, count: 3 * 4096)
        for a in 0..<3 { for b in 0..<2900 { for c in 0..<4096 { want[a * 4096 + c] += Double(host[(a * 2900 + b) * 4096 + c]) / 2900 } } }
        #expect(relativeError(m, want) <= fp32Tolerance)
        // LayerNorm and softmax over the last axis: check a few rows from each half.
        let (y, stats) = try ctx.layerNorm(x, gamma: nil, beta: nil, eps: 1e-5)
        let p = try ctx.softmax(x, scale: 2)
        let yh = try ctx.read(y), ph = try ctx.read(p), st = try ctx.read(stats)
        #expect(st.count == 3 * 2900 * 2)
        for row in [0, 4349, 4350, 8699] {
            let r = Array(host[(row * 4096)..<((row + 1) * 4096)]).map(Double.init)
            #expect(relativeError(Array(yh[(row * 4096)..<((row + 1) * 4096)]), Reference.layerNorm(r, cols: 4096, gamma: nil, beta: nil, eps: 1e-5)) <= fp32Tolerance)
            #expect(relativeError(Array(ph[(row * 4096)..<((row + 1) * 4096)]), Reference.softmax(r, cols: 4096, scale: 2)) <= fp32Tolerance)
        }
        expectNoValidationMessages(ctx)
    }
}
