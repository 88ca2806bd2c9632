import Foundation
import ProbeTestSupport
import Testing
@testable import ProbeKernels

@Suite struct ElementwiseTests {
    static let sizes = [1, 7, 8, 197, 1031, 1032]   // 8 and 1032: the float4 path

    /// The forward reads x as a texel buffer (lavapipe's default) or as a storage buffer.
    @Test(arguments: Activation.allCases, [true, false])
    func unaryForwardBackward(_ act: Activation, texel: Bool) throws {
        let ctx = try makeContext { $0.texelTwins = $0.texelTwins && texel }
        for n in Self.sizes {
            let x = randomValues(n, seed: UInt64(n), lo: -4, hi: 4), dy = randomValues(n, seed: UInt64(n) + 9)
            let (alpha, beta) = (1.25, -0.5)
            let tx = try upload(ctx, x, [n]), tdy = try upload(ctx, dy, [n])
            let y = try poisoned(ctx, [n])
            _ = try ctx.unary(tx, act, alpha: Float(alpha), beta: Float(beta), into: y)
            try expectClose(ctx, y, Reference.unary(x, act, alpha: alpha, beta: beta), "\(act) forward n=\(n)")
            try expectGuardIntact(ctx, y)
            let dx = try poisoned(ctx, [n])
            try ctx.unaryBackward(tx, tdy, act, alpha: Float(alpha), beta: Float(beta), into: dx)
            let ref = Reference.unaryBackward(x, dy, act, alpha: alpha, beta: beta)
            try expectClose(ctx, dx, ref, "\(act) backward n=\(n)")
            try expectGuardIntact(ctx, dx)
            // Accumulation adds onto what is there.
            try ctx.unaryBackward(tx, tdy, act, alpha: Float(alpha), beta: Float(beta), into: dx, accumulate: true)
            try expectClose(ctx, dx, ref.map { 2 * $0 }, "\(act) accumulated backward n=\(n)")
        }
        expectNoValidationMessages(ctx)
    }

    /// With x and y as texel buffers or storage buffers; outputs of a multiple of 4 elements take
    /// the float4-store path, the last two cases with groups of four that straddle rows.
    @Test(arguments: [true, false]) func binaryBroadcasting(texel: Bool) throws {
        let ctx = try makeContext { $0.texelTwins = $0.texelTwins && texel }
        let cases: [([Int], [Int])] = [([1], [1]), ([7], [7]), ([3, 7], [7]), ([197, 1], [1, 5]), ([2, 1, 4, 3], [3, 1, 1]), ([2, 3, 1], [2, 1, 7]),
                                       ([8], [8]), ([3, 8], [8]), ([2, 3, 4], [3, 1]), ([2, 1, 4, 8], [3, 1, 1]),
                                       ([4, 7], [7]), ([2, 3, 6], [3, 1]),
                                       // After merging (MergedAxes): one axis, not dense; four axes.
                                       ([7], [1]), ([8], [1]), ([2, 1, 5, 1], [3, 1, 2]), ([2, 1, 5, 1], [3, 1, 4])]
        for (xs, ys) in cases {
            for op in [BinaryOp.add, .subtract, .multiply, .divide] {
                let x = randomValues(xs.reduce(1, *), seed: 1), y = randomValues(ys.reduce(1, *), seed: 2, lo: 0.5, hi: 2)
                let (want, shape) = Reference.binary(x, xs, y, ys, op, alpha: 1.5, beta: -0.75)
                let z = try poisoned(ctx, shape)
                _ = try ctx.binary(try upload(ctx, x, xs), try upload(ctx, y, ys), op, alpha: 1.5, beta: -0.75, into: z)
                try expectClose(ctx, z, want, "\(op) \(xs) \(ys)")
                try expectGuardIntact(ctx, z)
            }
        }
        // One operand a view at an offset off the four-element grid, the other aligned.
        let xOff = randomValues(9, seed: 4), yOff = randomValues(8, seed: 5)
        let shifted = try upload(ctx, xOff, [9]).slice(axis: 0, 1..<9), aligned = try upload(ctx, yOff, [8])
        for (a, b, want) in [(shifted, aligned, zip(xOff.dropFirst(), yOff).map { 2 * $0 - $1 }),
                             (aligned, shifted, zip(yOff, xOff.dropFirst()).map { 2 * $0 - $1 })] {
            let z = try poisoned(ctx, [8])
            _ = try ctx.binary(a, b, .subtract, alpha: 2, beta: 1, into: z)
            try expectClose(ctx, z, want, "subtract with one operand at offset 1")
            try expectGuardIntact(ctx, z)
        }
        // Broadcast gradient: sum back to the operand's shape.
        let g = randomValues(2 * 3 * 7, seed: 3)
        let s = try ctx.sumTo(try upload(ctx, g, [2, 3, 7]), [3, 1])
        var want = [Double](repeating: 0, count: 3)
        for b in 0..<2 { for r in 0..<3 { for c in 0..<7 { want[r] += g[(b * 3 + r) * 7 + c] } } }
        try expectClose(ctx, s, want, "sumTo")
        #expect(throws: OpError.self) { try ctx.binary(try ctx.empty([3]), try ctx.empty([4]), .add) }
        expectNoValidationMessages(ctx)
    }
}
