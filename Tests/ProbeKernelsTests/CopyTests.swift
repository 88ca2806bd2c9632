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
        if deviceHas16BitStorage {
            let h = try ctx.empty(shape, dtype: .f16)
            try ctx.copy(t, into: h)
            let back = try ctx.contiguous(h, dtype: .f32)
            try expectClose(ctx, back, f16Rounded(x), "f16 round trip", tolerance: 0)
        }
        #expect(throws: OpError.self) { try ctx.copy(t, into: try ctx.empty([3, 5, 7])) }
        expectNoValidationMessages(ctx)
    }

    /// Four outputs per float4 store (flat, permuted, into slices of a wider tensor, converting),
    /// with the source read as a texel buffer or as a storage buffer; each against the reference
    /// and with the guard beyond the output intact.
    @Test(arguments: [true, false]) func vectorStoresWithEitherSource(texel: Bool) throws {
        let ctx = try makeContext { $0.texelTwins = $0.texelTwins && texel }
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
        guard deviceHas16BitStorage else { return expectNoValidationMessages(ctx) }
        let h = try ctx.empty([3, 8, 4], dtype: .f16)
        try ctx.copy(t, into: h)
        let back = try poisoned(ctx, [4, 3, 8])
        try ctx.copy(try h.permuted([2, 0, 1]), into: back)
        try expectClose(ctx, back, f16Rounded(want), "f16 round trip", tolerance: 0)
        // f16 → f32 dense: the source read four halves at a time.
        let widened = try poisoned(ctx, [3, 8, 4])
        try ctx.copy(h, into: widened)
        try expectClose(ctx, widened, f16Rounded(x), "f16 → f32, flat", tolerance: 0)
        try expectGuardIntact(ctx, widened)
        expectNoValidationMessages(ctx)
    }

    /// The kernel decomposes only the axes left after dropping unit axes and merging neighbours
    /// that both layouts step through as one; broadcast sources (stride 0, the backward of a
    /// mean), and a permute whose six axes compress to three, against the reference, with the
    /// source read either way.
    @Test(arguments: [true, false]) func broadcastsAndMergedAxes(texel: Bool) throws {
        let ctx = try makeContext { $0.texelTwins = $0.texelTwins && texel }
        let dense = { (shape: [Int]) in Tensor.contiguousStrides(shape) }
        func axes(_ shape: [Int], _ sIn: [Int], _ sOut: [Int]) -> (shape: [Int], sIn: [Int], sOut: [Int]) {
            let m = MergedAxes(shape, [sIn, sOut])
            return (m.shape, m.strides[0], m.strides[1])
        }
        let flat = axes([2, 3, 4], dense([2, 3, 4]), dense([2, 3, 4]))
        #expect(flat.shape == [24] && flat.sIn == [1] && flat.sOut == [1])
        let tokens = axes([4, 1, 5, 8], [8, 8, 0, 1], dense([4, 1, 5, 8]))
        #expect(tokens.shape == [4, 5, 8] && tokens.sIn == [8, 0, 1] && tokens.sOut == [40, 8, 1])
        let single = axes([1, 1], [1, 1], [1, 1])
        #expect(single.shape == [1])
        // Broadcast along tokens and along channels.
        let x = randomValues(4 * 8, seed: 30).map { Double(Float($0)) }
        let t = try upload(ctx, x, [4, 8])
        let alongTokens = try poisoned(ctx, [4, 5, 8])
        try ctx.copy(Tensor(buffer: t.buffer, shape: [4, 5, 8], strides: [8, 0, 1]), into: alongTokens)
        var want: [Double] = []
        for b in 0..<4 { for _ in 0..<5 { for d in 0..<8 { want.append(x[b * 8 + d]) } } }
        try expectClose(ctx, alongTokens, want, "broadcast along tokens", tolerance: 0)
        try expectGuardIntact(ctx, alongTokens)
        let alongChannels = try poisoned(ctx, [4, 8, 12])
        try ctx.copy(Tensor(buffer: t.buffer, shape: [4, 8, 12], strides: [8, 1, 0]), into: alongChannels)
        want = []
        for b in 0..<4 { for n in 0..<8 { for _ in 0..<12 { want.append(x[b * 8 + n]) } } }
        try expectClose(ctx, alongChannels, want, "broadcast along channels", tolerance: 0)
        try expectGuardIntact(ctx, alongChannels)
        // (2, 3, 5, 2, 3, 7) → axes (1, 2) and (4, 5) kept together, the pairs swapped: three axes.
        let shape6 = [2, 3, 5, 2, 3, 7]
        let y = randomValues(shape6.reduce(1, *), seed: 31).map { Double(Float($0)) }
        let ty = try upload(ctx, y, shape6)
        let view = try ty.permuted([0, 3, 4, 5, 1, 2])
        let out = try poisoned(ctx, view.shape)
        #expect(MergedAxes(view.shape, [view.strides, out.strides]).shape.count == 3)
        try ctx.copy(view, into: out)
        want = []
        for a in 0..<2 { for d in 0..<2 { for e in 0..<3 { for f in 0..<7 { for b in 0..<3 { for c in 0..<5 {
            want.append(y[((((a * 3 + b) * 5 + c) * 2 + d) * 3 + e) * 7 + f])
        } } } } } }
        try expectClose(ctx, out, want, "permute of merged axis pairs", tolerance: 0)
        try expectGuardIntact(ctx, out)
        expectNoValidationMessages(ctx)
    }

    /// Transposes in 4×4 blocks (CPU devices, texel source): 2-D, batched over two folded axes,
    /// into a slice of a wider tensor, and in 16-bit words (f16, bf16); bit-exact against the
    /// reference permutation (NaN payloads and signed zeros included), guards intact. Layouts the
    /// block kernel cannot take (a side not a multiple of 4, a misaligned offset) are refused by
    /// its plan and still copy correctly.
    @Test func blockTransposes() throws {
        let ctx = try makeContext()
        try #require(ctx.variants.texelTwins, "lavapipe has texel buffers")
        func bitsOf(_ n: Int, seed: UInt64) -> [UInt32] {
            var bits = randomValues(n, seed: seed, lo: -100, hi: 100).map { Float($0).bitPattern }
            bits[0] = 0x7FC0_1234; bits[1] = 0xFF80_0001; bits[2] = 0x8000_0000; bits[3] = 0x0000_0001
            return bits
        }
        func device(_ bits: [UInt32], _ shape: [Int]) throws -> Tensor {
            let t = try ctx.empty(shape)
            try bits.withUnsafeBytes { try ctx.device.upload($0, to: t.buffer) }
            return t
        }
        func readBits(_ t: Tensor, count: Int) throws -> [UInt32] {
            var out = [UInt32](repeating: 0, count: count)
            try ctx.finish()
            try out.withUnsafeMutableBytes { try ctx.device.download(t.buffer, into: $0) }
            return out
        }
        // (B0, B1, R, C) source, permuted to (B0, B1, C, R): source contiguous along R.
        let (b0, b1, rr, cc) = (2, 3, 8, 12)
        let bits = bitsOf(b0 * b1 * rr * cc, seed: 21)
        let src = try device(bits, [b0, b1, rr, cc])
        var want: [UInt32] = []
        for i in 0..<b0 { for j in 0..<b1 { for c in 0..<cc { for r in 0..<rr { want.append(bits[((i * b1 + j) * rr + r) * cc + c]) } } } }
        let view = try src.permuted([0, 1, 3, 2])
        let out = try poisoned(ctx, [b0, b1, cc, rr])
        #expect(BlockTranspose(view, out) != nil)
        try ctx.copy(view, into: out)
        #expect(try readBits(out, count: want.count) == want, "batched transpose")
        try expectGuardIntact(ctx, out)
        // 2-D into the right half of a (12, 16) tensor (destination row stride 16).
        let flat = try src.reshaped([b0 * b1 * rr, cc]).slice(axis: 0, 0..<8)
        let wide = try device([UInt32](repeating: 0x4040_0000, count: 12 * 16), [12, 16])
        let half = try wide.slice(axis: 1, 8..<16)
        #expect(BlockTranspose(try flat.permuted([1, 0]), half) != nil)
        try ctx.copy(try flat.permuted([1, 0]), into: half)
        var wideWant = [UInt32](repeating: 0x4040_0000, count: 12 * 16)
        for c in 0..<12 { for r in 0..<8 { wideWant[c * 16 + 8 + r] = bits[r * cc + c] } }
        #expect(try readBits(wide, count: wideWant.count) == wideWant, "transpose into a slice")
        // 16-bit words: f16 and bf16 (the low halves of the words above as bit patterns).
        for dtype in [DType.f16, .bf16] where deviceHas16BitStorage {
            let halves = bits.map { UInt16(truncatingIfNeeded: $0 >> 7) }
            let h = try ctx.empty([b0, b1, rr, cc], dtype: dtype)
            try halves.withUnsafeBytes { try ctx.device.upload($0, to: h.buffer) }
            let hv = try h.permuted([0, 1, 3, 2])
            let ho = try poisoned(ctx, [b0, b1, cc, rr], dtype: dtype)
            #expect(BlockTranspose(hv, ho) != nil)
            try ctx.copy(hv, into: ho)
            var got = [UInt16](repeating: 0, count: halves.count)
            try ctx.finish()
            try got.withUnsafeMutableBytes { try ctx.device.download(ho.buffer, into: $0) }
            var hWant: [UInt16] = []
            for i in 0..<b0 { for j in 0..<b1 { for c in 0..<cc { for r in 0..<rr { hWant.append(halves[((i * b1 + j) * rr + r) * cc + c]) } } } }
            #expect(got == hWant, "\(dtype) transpose")
            try expectGuardIntact(ctx, ho)
        }
        // Not for the block kernel: rows of 6, and a source offset of 2 elements; copied all the same.
        for (columns, what) in [(0..<6, "rows of 6"), (2..<10, "from offset 2")] {
            let part = try src.reshaped([b0 * b1 * rr, cc]).slice(axis: 1, columns)
            let partOut = try poisoned(ctx, [columns.count, 48])
            #expect(BlockTranspose(try part.permuted([1, 0]), partOut) == nil)
            try ctx.copy(try part.permuted([1, 0]), into: partOut)
            var partWant: [UInt32] = []
            for c in columns { for r in 0..<48 { partWant.append(bits[r * cc + c]) } }
            #expect(try readBits(partOut, count: partWant.count) == partWant, "transpose, \(what)")
        }
        expectNoValidationMessages(ctx)
    }

    /// f32 → bf16 rounds to nearest, ties to even (against `bf16Rounded`, which rounds by
    /// arithmetic in Double rather than on the bits): exact ties either way, values just past
    /// them, subnormals, overflow to ±inf, ±0, ±inf; NaN becomes the quiet NaN 0x7FC0 (as PyTorch).
    /// bf16 → f32 and bf16 → bf16 are exact. Flat (float4 stores), permuted, and with the source
    /// read as a texel buffer or a storage buffer, the guard beyond each output intact.
    @Test(.enabled(if: deviceHas16BitStorage, "16-bit storage"), arguments: [true, false]) func bfloat16Conversions(texel: Bool) throws {
        let ctx = try makeContext { $0.texelTwins = $0.texelTwins && texel }
        var bits: [UInt32] = [
            0x3F80_8000,   // 1 + 2⁻⁸: a tie between 1 (even) and 1 + 2⁻⁷, to 1
            0x3F81_8000,   // a tie between 1 + 2⁻⁷ (odd) and 1 + 2⁻⁶, up
            0x3F80_8001, 0x3F80_7FFF, 0xBF81_8000, 0xBF80_8000,
            0x7F7F_FFFF,   // the largest f32: past the largest bf16, to inf
            0x7F7F_7FFF,   // just below the midpoint: the largest bf16
            0xFF7F_FFFF, 0x0000_0001, 0x0000_8000, 0x0001_8000, 0x8040_C000, 0x0080_0000,
            0x0000_0000, 0x8000_0000, 0x7F80_0000, 0xFF80_0000,
            0x7FC0_1234, 0xFF80_0001,   // NaNs (quiet and signalling)
        ]
        bits += randomValues(40, seed: 12, lo: -1e4, hi: 1e4).map { Float($0).bitPattern }
        bits += randomValues(20, seed: 13, lo: -1e-36, hi: 1e-36).map { Float($0).bitPattern }   // near and below the normal range
        let x = bits.map { Float(bitPattern: $0) }
        try #require(x.count == 80)
        let want = x.map(bf16Rounded)
        let t = try ctx.empty([4, 5, 4])
        try x.withUnsafeBytes { try ctx.device.upload($0, to: t.buffer) }
        func expectBF16(_ got: [Float], _ want: [Float], _ what: String) {
            let bad = zip(got, want).enumerated().filter { _, p in p.1.isNaN ? p.0.bitPattern != 0x7FC0_0000 : p.0.bitPattern != p.1.bitPattern }
            #expect(bad.isEmpty, "\(what): \(bad.count) of \(got.count) differ, first: \(bad.prefix(3).map { "#\($0.offset) \(x[$0.offset]) → \($0.element.0) (want \($0.element.1))" })")
        }
        let flat = try poisoned(ctx, [4, 5, 4], dtype: .bf16)
        try ctx.copy(t, into: flat)
        expectBF16(try ctx.read(flat), want, "f32 → bf16, flat")
        try expectGuardIntact(ctx, flat)
        // Permuted on the way in (scalar stores of a non-dense output order), then back out.
        let permuted = try poisoned(ctx, [4, 4, 5], dtype: .bf16)
        try ctx.copy(try t.permuted([0, 2, 1]), into: permuted)
        var permutedWant: [Float] = []
        for a in 0..<4 { for c in 0..<4 { for b in 0..<5 { permutedWant.append(want[(a * 5 + b) * 4 + c]) } } }
        expectBF16(try ctx.read(permuted), permutedWant, "f32 → bf16, permuted")
        try expectGuardIntact(ctx, permuted)
        let back = try poisoned(ctx, [4, 5, 4])
        try ctx.copy(try permuted.permuted([0, 2, 1]), into: back)
        expectBF16(try ctx.read(back), want, "bf16 → f32, permuted back")
        try expectGuardIntact(ctx, back)
        let again = try poisoned(ctx, [4, 4, 5], dtype: .bf16)
        try ctx.copy(permuted, into: again)
        expectBF16(try ctx.read(again), permutedWant, "bf16 → bf16")
        // f16 and bf16 do not mix.
        #expect(throws: OpError.self) { try ctx.copy(flat, into: try ctx.empty([4, 5, 4], dtype: .f16)) }
        expectNoValidationMessages(ctx)
    }
}
