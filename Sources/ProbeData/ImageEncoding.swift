import CSPNG
import CTurboJPEG
import Foundation

/// Writes RGB images: PNG (libspng) for maps and figures, JPEG (libjpeg-turbo) for generated
/// datasets.
public enum ImageEncoder {
    public static func png(_ image: RGBImage) throws -> Data {
        guard image.width > 0, image.height > 0, image.pixels.count == image.width * image.height * 3 else {
            throw ImageError("PNG of \(image.width)×\(image.height): \(image.pixels.count) bytes is not RGB")
        }
        guard let ctx = spng_ctx_new(Int32(SPNG_CTX_ENCODER.rawValue)) else { throw ImageError("cannot start the PNG encoder") }
        defer { spng_ctx_free(ctx) }
        func check(_ r: Int32, _ what: String) throws {
            if r != 0 { throw ImageError("PNG \(what): \(String(cString: spng_strerror(r)))") }
        }
        try check(spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1), "buffer")
        var ihdr = spng_ihdr(width: UInt32(image.width), height: UInt32(image.height), bit_depth: 8,
                             color_type: UInt8(SPNG_COLOR_TYPE_TRUECOLOR.rawValue), compression_method: 0, filter_method: 0, interlace_method: 0)
        try check(spng_set_ihdr(ctx, &ihdr), "header")
        try image.pixels.withUnsafeBytes { raw in
            try check(spng_encode_image(ctx, raw.baseAddress, raw.count, Int32(SPNG_FMT_PNG.rawValue), Int32(SPNG_ENCODE_FINALIZE.rawValue)), "encode")
        }
        var length = 0, error: Int32 = 0
        guard let buffer = spng_get_png_buffer(ctx, &length, &error), error == 0 else { try check(error, "buffer"); throw ImageError("PNG: no output") }
        defer { free(buffer) }
        return Data(bytes: buffer, count: length)
    }

    /// Baseline JPEG, 4:2:0, at `quality`.
    public static func jpeg(_ image: RGBImage, quality: Int = 90) throws -> Data {
        guard image.width > 0, image.height > 0, image.pixels.count == image.width * image.height * 3 else {
            throw ImageError("JPEG of \(image.width)×\(image.height): \(image.pixels.count) bytes is not RGB")
        }
        guard let handle = tjInitCompress() else { throw ImageError("cannot start the JPEG encoder") }
        defer { tjDestroy(handle) }
        var out: UnsafeMutablePointer<UInt8>? = nil
        var size: UInt = 0
        let status = image.pixels.withUnsafeBufferPointer { src in
            tjCompress2(handle, src.baseAddress, Int32(image.width), 0, Int32(image.height), Int32(TJPF_RGB.rawValue), &out, &size,
                        Int32(TJSAMP_420.rawValue), Int32(quality), 0)
        }
        defer { if let out { tjFree(out) } }
        guard status == 0, let out else { throw ImageError("JPEG encoding failed: \(String(cString: tjGetErrorStr2(handle)))") }
        return Data(bytes: out, count: Int(size))
    }
}
