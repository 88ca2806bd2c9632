import Foundation
import ProbeTestSupport
import Testing
@testable import ProbeKernels

/// Row kernels run as one thread, a workgroup with shared-memory reductions, or one subgroup with
/// subgroup arithmetic per row (0 = one subgroup of the device's size with the `_sg` variants; a workgroup of any other
/// size is refused, see `KernelVariants.rowChoiceProblem`): test all.
let rowShapes: [UInt32] = [1, 32, 0]

func rowVariant(_ tpr: UInt32) -> (inout KernelVariants) -> Void {
    { v in
        if tpr == 0 && v.fixedSubgroup { v.rowLocal = UInt32(v.subgroupSize); v.rowSubgroup = true } else { v.rowLocal = tpr; v.rowSubgroup = false }
    }
}
let rowCases: [(rows: Int, cols: Int)] = [(1, 1), (7, 7), (3, 197), (197, 7), (2, 1000), (5, 12)]   // rows of 1000 and 12: float4 paths

@Suite struct SoftmaxTests {
    /// The forward reads x, the backward y and dy, as texel buffers (lavapipe's default) or as storage buffers.
    @Test(arguments: rowShapes, [true, false])
    func softmaxForwardBackward(tpr: UInt32, texel: Bool) throws {
        let ctx = try makeContext { v in rowVariant(tpr)(&v); v.texelTwins = v.texelTwins && texel }
        for (rows, cols) in rowCases {
            let x = randomValues(rows * cols, seed: UInt64(rows + cols), lo: -3, hi: 3), dy = randomValues(rows * cols, seed: 4)
            let mask = randomValues(cols, seed: 5, lo: -2, hi: 0)
            let tx = try upload(ctx, x, [rows, cols])
            for useMask in [false, true] {
                let y = try poisoned(ctx, [rows, cols])
                _ = try ctx.softmax(tx, scale: 0.7, mask: useMask ? try upload(ctx, mask, [1, cols]) : nil, into: y)
                let want = Reference.softmax(x, cols: cols, scale: 0.7, mask: useMask ? mask : nil)
                try expectClose(ctx, y, want, "softmax \(rows)x\(cols) mask \(useMask)")
                try expectGuardIntact(ctx, y)
            }
            let y = Reference.softmax(x, cols: cols, scale: 0.7)
            let dx = try poisoned(ctx, [rows, cols])
            try ctx.softmaxBackward(try upload(ctx, y, [rows, cols]), try upload(ctx, dy, [rows, cols]), scale: 0.7, into: dx)
            let ref = Reference.softmaxBackward(y, dy, cols: cols, scale: 0.7)
            try expectClose(ctx, dx, ref, "softmax backward \(rows)x\(cols)")
            try expectGuardIntact(ctx, dx)
            // Accumulation adds onto what is there.
            try ctx.softmaxBackward(try upload(ctx, y, [rows, cols]), try upload(ctx, dy, [rows, cols]), scale: 0.7, into: dx, accumulate: true)
            try expectClose(ctx, dx, ref.map { 2 * $0 }, "accumulated softmax backward \(rows)x\(cols)")
        }
        expectNoValidationMessages(ctx)
    }

    /// Rows on the four-element grid (attention's scores, rows padded to a multiple of 4) are held
    /// in registers on CPU devices (IN_REGISTERS): every width from one partial quad to eight full
    /// ones per lane, masked or not, each element right and the padding between rows never
    /// written (it stays NaN). Past eight quads per lane the per-element kernel takes them.
    @Test(arguments: [1, 5, 12, 29, 197, 256, 257])
    func paddedRowsInRegisters(cols: Int) throws {
        let ctx = try makeContext { v in rowVariant(0)(&v) }
        let rows = 9, stride = (cols + 3) / 4 * 4 + 4
        let x = randomValues(rows * cols, seed: UInt64(cols), lo: -4, hi: 4), mask = randomValues(cols, seed: 6, lo: -2, hi: 0)
        var stored = [Double](repeating: 0, count: rows * stride)
        for r in 0..<rows { for c in 0..<cols { stored[r * stride + c] = x[r * cols + c] } }
        let tx = try upload(ctx, stored, [rows, stride]).slice(axis: 1, 0..<cols)
        for useMask in [false, true] {
            let yStore = try poisoned(ctx, [rows, stride])
            let y = try yStore.slice(axis: 1, 0..<cols)
            _ = try ctx.softmax(tx, scale: 0.9, mask: useMask ? try upload(ctx, mask, [1, cols]) : nil, into: y)
            let want = Reference.softmax(x, cols: cols, scale: 0.9, mask: useMask ? mask : nil)
            try expectClose(ctx, y, want, "softmax \(rows)x\(cols) in rows of \(stride), mask \(useMask)")
            let all = try ctx.read(yStore)
            let padding = (0..<rows).flatMap { r in (cols..<stride).map { all[r * stride + $0] } }
            #expect(padding.allSatisfy { $0.isNaN }, "softmax wrote into the padding of rows of \(cols) in \(stride)")
            try expectGuardIntact(ctx, yStore)
        }
        expectNoValidationMessages(ctx)
    }
}
