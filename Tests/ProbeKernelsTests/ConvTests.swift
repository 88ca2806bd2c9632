import Foundation
import ProbeTestSupport
import Testing
@testable import ProbeKernels

@Suite struct ConvTests {
    @Test(arguments: [(1, 2, 1, 4, 4, 7, 3), (2, 2, 1, 7, 5, 7, 3), (2, 3, 4, 5, 5, 3, 1), (1, 1, 1, 1, 1, 1, 0)])
    func conv2dForwardBackward(B: Int, Cin: Int, Cout: Int, H: Int, W: Int, K: Int, pad: Int) throws {
        let ctx = try makeContext()
        let x = randomValues(B * Cin * H * W, seed: 1), w = randomValues(Cout * Cin * K * K, seed: 2)
        let Ho = H + 2 * pad - K + 1, Wo = W + 2 * pad - K + 1
        let dy = randomValues(B * Cout * Ho * Wo, seed: 3)
        let tx = try upload(ctx, x, [B, Cin, H, W]), tw = try upload(ctx, w, [Cout, Cin, K, K])
        let y = try ctx.conv2d(tx, tw, padding: pad)
        try expectClose(ctx, y, Reference.conv2d(x, B: B, Cin: Cin, H: H, W: W, w: w, Cout: Cout, KH: K, KW: K, pad: pad), "conv2d")
        let dx = try poisoned(ctx, [B, Cin, H, W]), dw = try poisoned(ctx, [Cout, Cin, K, K])
        try ctx.conv2dBackward(tx, tw, padding: pad, try upload(ctx, dy, [B, Cout, Ho, Wo]), dx: dx, dw: dw)
        let (rdx, rdw) = Reference.conv2dBackward(x, B: B, Cin: Cin, H: H, W: W, w: w, Cout: Cout, KH: K, KW: K, pad: pad, dy: dy)
        try expectClose(ctx, dx, rdx, "conv2d dx"); try expectGuardIntact(ctx, dx)
        try expectClose(ctx, dw, rdw, "conv2d dw"); try expectGuardIntact(ctx, dw)
        expectNoValidationMessages(ctx)
    }
}
