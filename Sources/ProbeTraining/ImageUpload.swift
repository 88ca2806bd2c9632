import ProbeData
import ProbeKernels

extension KernelContext {
    /// A loaded batch on the device as (n, 3, H, W) f32, normalised: bytes are uploaded as they are
    /// and normalised by a kernel (a quarter of the transfer of f32 pixels).
    public func images(_ batch: ImageBatch, of source: ImageSource) throws -> Tensor {
        let (n, H, W) = (batch.count, source.height, source.width)
        switch batch.pixels {
        case let .normalized(v): return try tensor(v, [n, 3, H, W])
        case let .rgb8(bytes):
            let packed = try uploadRGB8(bytes, count: n, height: H, width: W)
            let norm = source.normalization
            return try normalizeRGB8(packed, height: H, width: W, mean: norm.mean, std: norm.std)
        }
    }
}
