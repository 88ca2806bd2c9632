import ProbeShaders
import VulkanCompute

extension KernelContext {
    /// Uploads `n` images of H × W interleaved RGB bytes (`pixels`, n·H·W·3 bytes) as packed words
    /// (each image starting on a word) — a quarter of the f32 upload.
    public func uploadRGB8(_ pixels: [UInt8], count n: Int, height: Int, width: Int) throws -> Tensor {
        let per = height * width * 3
        guard n > 0, height > 0, width > 0, pixels.count == n * per else {
            throw OpError.shape("uploadRGB8", "\(pixels.count) bytes for \(n) images of \(height)×\(width)×3")
        }
        let words = (per + 3) / 4
        let t = try empty([n, words], dtype: .i32)
        if per % 4 == 0 {
            try pixels.withUnsafeBytes { try device.upload($0, to: t.buffer, offset: 0) }
        } else {
            var padded = [UInt8](repeating: 0, count: n * words * 4)
            for b in 0..<n { padded.replaceSubrange(b * words * 4..<(b * words * 4 + per), with: pixels[b * per..<((b + 1) * per)]) }
            try padded.withUnsafeBytes { try device.upload($0, to: t.buffer, offset: 0) }
        }
        return t
    }

    /// `(byte / 255 − mean[c]) / std[c]` of packed RGB images (`uploadRGB8`) into (n, 3, H, W) f32,
    /// as torchvision's ToTensor + Normalize.
    public func normalizeRGB8(_ packed: Tensor, height: Int, width: Int, mean: [Float], std: [Float], into out: Tensor? = nil) throws -> Tensor {
        let op = "normalizeRGB8"
        let words = (height * width * 3 + 3) / 4
        guard packed.rank == 2, packed.dtype == .i32, packed.shape[1] == words, packed.isContiguous else {
            throw OpError.shape(op, "\(packed): expected (n, \(words)) packed words of \(height)×\(width) RGB images")
        }
        guard mean.count == 3, std.count == 3, std.allSatisfy({ $0 != 0 && $0.isFinite }) else {
            throw OpError.shape(op, "mean \(mean) and std \(std): three channels, std non-zero")
        }
        let n = packed.shape[0]
        let y = try out ?? empty([n, 3, height, width])
        try checkDevice(op, packed, y); try requireContiguous(op, y); try requireF32(op, y)
        guard y.shape == [n, 3, height, width] else { throw OpError.shape(op, "output \(y), expected (\(n), 3, \(height), \(width))") }
        let k = try kernel(NormalizeRgb8Kernel.self, .base, .init(localSizeX: variants.elementwiseLocal))
        try forEachPiece(op, [packed, y], [SplitAxis(size: n, axes: [0, 0]), SplitAxis(size: 3, axes: [nil, 1])]) { t, r in
            let (bi, oi) = try bind(t[0], .read, op: op), (bo, oo) = try bind(t[1], .write, op: op)
            try stream.dispatch(k, [bi, bo], push: .init(n: t[1].count, hw: height * width, imageWords: words, offIn: oi, offOut: oo,
                                                         channels: r[1].count, firstChannel: r[1].lowerBound, outImageStride: t[1].strides[0],
                                                         mean: mean, std: std),
                                groups: elementGroups(t[1].count))
        }
        return y
    }
}
