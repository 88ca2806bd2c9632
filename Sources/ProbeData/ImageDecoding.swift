import CSPNG
import CTurboJPEG
import Foundation

/// An 8-bit RGB image, row-major, 3 bytes per pixel.
public struct RGBImage: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var pixels: [UInt8]
    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * 3, "RGB pixels of \(width)×\(height)")
        self.width = width; self.height = height; self.pixels = pixels
    }
}

/// Why an image could not be read.
public struct ImageError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// Decodes JPEG (libjpeg-turbo) and PNG (libspng) files to RGB as PIL does with
/// `Image.open(f).convert("RGB")`, which torchvision's loaders call: accurate (islow) IDCT and
/// fancy upsampling, greyscale replicated, CMYK (Adobe's inverted convention, as PIL assumes)
/// converted with PIL's formula, EXIF orientation ignored; PNG palettes expanded, alpha dropped,
/// 16-bit samples reduced to their high byte, no gamma correction.
/// One decoder per thread (it keeps its libjpeg-turbo handle; not for concurrent use).
public final class ImageDecoder {
    /// Images larger than this (in pixels) are refused rather than decoded.
    public static let maxPixels = 1 << 28
    let jpeg: tjhandle?

    public init() { jpeg = tjInitDecompress() }
    deinit { if let jpeg { tjDestroy(jpeg) } }

    /// Decodes with a decoder of its own (for one-off use).
    public static func decode(_ data: Data, name: String) throws -> RGBImage { try ImageDecoder().decode(data, name: name) }

    /// The RGB pixels of the file at `url`.
    public func decode(contentsOf url: URL) throws -> RGBImage {
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw ImageError("\(url.path): cannot read (\(error.localizedDescription))") }
        return try decode(data, name: url.path)
    }

    public func decode(_ data: Data, name: String) throws -> RGBImage {
        if data.count >= 3, data[data.startIndex] == 0xFF, data[data.startIndex + 1] == 0xD8, data[data.startIndex + 2] == 0xFF {
            return try decodeJPEG(data, name: name)
        }
        if data.count >= 8, Array(data.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] {
            return try decodePNG(data, name: name)
        }
        throw ImageError("\(name): not a JPEG or PNG file (\(data.count) bytes)")
    }

    func decodeJPEG(_ data: Data, name: String) throws -> RGBImage {
        guard let handle = jpeg else { throw ImageError("\(name): cannot start the JPEG decoder") }
        return try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> RGBImage in
            let src = raw.bindMemory(to: UInt8.self)
            var w: Int32 = 0, h: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
            guard tjDecompressHeader3(handle, src.baseAddress, UInt(src.count), &w, &h, &subsampling, &colorspace) == 0 else {
                throw ImageError("\(name): not a readable JPEG (\(String(cString: tjGetErrorStr2(handle))))")
            }
            guard w > 0, h > 0, Int(w) * Int(h) <= Self.maxPixels else { throw ImageError("\(name): JPEG of \(w)×\(h) pixels is refused") }
            let n = Int(w) * Int(h)
            let cmyk = colorspace == Int32(TJCS_CMYK.rawValue) || colorspace == Int32(TJCS_YCCK.rawValue)
            let format = cmyk ? TJPF_CMYK : TJPF_RGB
            var out = [UInt8](repeating: 0, count: n * (cmyk ? 4 : 3))
            let status = out.withUnsafeMutableBufferPointer { dst in
                tjDecompress2(handle, src.baseAddress, UInt(src.count), dst.baseAddress, w, 0, h, Int32(format.rawValue), TJFLAG_ACCURATEDCT)
            }
            // A warning (e.g. a truncated file libjpeg completes with grey) is still an error here:
            // PIL refuses truncated files unless told otherwise.
            if status != 0 { throw ImageError("\(name): damaged JPEG (\(String(cString: tjGetErrorStr2(handle))))") }
            guard cmyk else { return RGBImage(width: Int(w), height: Int(h), pixels: out) }
            // PIL reads 4-component JPEGs as inverted CMYK ("CMYK;I") and converts to RGB with
            // nk = 255 − k; c' = nk − c·nk/255 (rounded as PIL's MULDIV255).
            var rgb = [UInt8](repeating: 0, count: n * 3)
            for i in 0..<n {
                let c = 255 - Int(out[4 * i]), m = 255 - Int(out[4 * i + 1]), y = 255 - Int(out[4 * i + 2]), k = 255 - Int(out[4 * i + 3])
                let nk = 255 - k
                func muldiv255(_ a: Int, _ b: Int) -> Int { let t = a * b + 128; return ((t >> 8) + t) >> 8 }
                rgb[3 * i] = UInt8(clamping: nk - muldiv255(c, nk))
                rgb[3 * i + 1] = UInt8(clamping: nk - muldiv255(m, nk))
                rgb[3 * i + 2] = UInt8(clamping: nk - muldiv255(y, nk))
            }
            return RGBImage(width: Int(w), height: Int(h), pixels: rgb)
        }
    }

    func decodePNG(_ data: Data, name: String) throws -> RGBImage {
        guard let ctx = spng_ctx_new(0) else { throw ImageError("\(name): cannot start the PNG decoder") }
        defer { spng_ctx_free(ctx) }
        return try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> RGBImage in
            func check(_ r: Int32, _ what: String) throws {
                if r != 0 { throw ImageError("\(name): \(what): \(String(cString: spng_strerror(r)))") }
            }
            try check(spng_set_image_limits(ctx, 1 << 16, 1 << 16), "PNG limits")
            try check(spng_set_png_buffer(ctx, raw.baseAddress, raw.count), "not a readable PNG")
            var ihdr = spng_ihdr()
            try check(spng_get_ihdr(ctx, &ihdr), "not a readable PNG")
            guard Int(ihdr.width) * Int(ihdr.height) <= Self.maxPixels else { throw ImageError("\(name): PNG of \(ihdr.width)×\(ihdr.height) pixels is refused") }
            var size = 0
            let fmt = Int32(SPNG_FMT_RGB8.rawValue)
            try check(spng_decoded_image_size(ctx, fmt, &size), "PNG size")
            var out = [UInt8](repeating: 0, count: size)
            try out.withUnsafeMutableBytes { try check(spng_decode_image(ctx, $0.baseAddress, size, fmt, 0), "damaged PNG") }
            return RGBImage(width: Int(ihdr.width), height: Int(ihdr.height), pixels: out)
        }
    }
}
