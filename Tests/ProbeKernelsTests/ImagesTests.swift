import Foundation
import ProbeTestSupport
import Testing
@testable import ProbeKernels

@Suite struct ImagesTests {
    /// Packed RGB bytes → normalised planes, against a Double reference. Each output is three f32
    /// operations (÷255, −mean, ÷std), each rounding within half an ulp of its result; the bound is
    /// 2 ulp of the terms' magnitude, (v/255 + |mean|)/std, since the subtraction can cancel.
    @Test(arguments: [(1, 1, 1), (3, 5, 7), (2, 4, 4), (5, 3, 2), (2, 8, 7)])
    func normalizesPackedBytes(_ shape: (Int, Int, Int)) throws {
        let (n, H, W) = shape
        let mean: [Float] = [0.485, 0.456, 0.406], std: [Float] = [0.229, 0.224, 0.225]
        var rng = SystemRandomNumberGenerator()
        let bytes = (0..<(n * H * W * 3)).map { i in i < 6 ? UInt8([0, 255, 124, 116, 103, 1][i]) : UInt8.random(in: 0...255, using: &rng) }
        for limit in [nil, 256] as [Int?] {   // 256 bytes: pieces of one image or of some channels
            let ctx = try makeContext(maxBindingBytes: limit)
            let packed = try ctx.uploadRGB8(bytes, count: n, height: H, width: W)
            let out = try poisoned(ctx, [n, 3, H, W])
            _ = try ctx.normalizeRGB8(packed, height: H, width: W, mean: mean, std: std, into: out)
            let got = try ctx.read(out)
            for b in 0..<n { for c in 0..<3 { for p in 0..<(H * W) {
                let v = Double(bytes[(b * H * W + p) * 3 + c])
                let want = (v / 255 - Double(mean[c])) / Double(std[c])
                let bound = 2 * 0x1p-24 * (v / 255 + Double(mean[c])) / Double(std[c]) * 2
                let g = Double(got[(b * 3 + c) * H * W + p])
                #expect(abs(g - want) <= bound, "image \(b) channel \(c) pixel \(p): \(g) vs \(want) (limit \(limit.map(String.init) ?? "none"))")
            } } }
            try expectGuardIntact(ctx, out)
            expectNoValidationMessages(ctx)
        }
    }

    @Test func refusesMismatchedShapes() throws {
        let ctx = try makeContext()
        #expect(throws: OpError.self) { try ctx.uploadRGB8([1, 2, 3], count: 2, height: 1, width: 1) }
        let packed = try ctx.uploadRGB8([UInt8](repeating: 7, count: 12), count: 1, height: 2, width: 2)
        #expect(throws: OpError.self) { try ctx.normalizeRGB8(packed, height: 3, width: 2, mean: [0, 0, 0], std: [1, 1, 1]) }
        #expect(throws: OpError.self) { try ctx.normalizeRGB8(packed, height: 2, width: 2, mean: [0, 0, 0], std: [1, 0, 1]) }
    }
}
