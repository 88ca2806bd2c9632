import CImageCodecs
import Foundation

/// JPEG to RGB as PIL's JpegImagePlugin and `convert("RGB")` produce it: libjpeg's accurate
/// integer IDCT and fancy upsampling (PIL's defaults), greyscale replicated, CMYK/YCCK through
/// PIL's inverted-CMYK formula, EXIF orientation ignored.
///
/// libjpeg *warnings* ("Corrupt JPEG data: N extraneous bytes before marker 0xdb", bad Huffman
/// codes it resynchronises from) leave an image, which PIL returns: so do we, reporting the first
/// warning. A file that ends before its image ("Premature end of JPEG file", which libjpeg would
/// fill with grey) is refused, as PIL refuses truncated files; so is every libjpeg *error*
/// (12-bit samples, broken headers).
enum JPEGDecoding {
    static func decode(_ data: Data, name: String) throws -> (RGBImage, warning: String?) {
        var result = vkp_jpeg_result()
        var raw: UnsafeMutablePointer<UInt8>?
        let status = data.withUnsafeBytes { buf in
            vkp_jpeg_decode(buf.baseAddress!.assumingMemoryBound(to: UInt8.self), buf.count, Int64(ImageDecoder.maxPixels),
                            Int32(ImageDecoder.maxScans), &raw, &result)
        }
        defer { vkp_free(raw) }
        let message = withUnsafeBytes(of: result.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        guard status == 0, let raw else {
            if result.too_large != 0 {
                throw ImageError("\(name): JPEG of \(result.width)×\(result.height) pixels is refused (over \(ImageDecoder.maxPixels), PIL's decompression-bomb limit)")
            }
            throw ImageError("\(name): unreadable JPEG (libjpeg: \(message))")
        }
        if result.premature_end != 0 {
            throw ImageError("\(name): truncated JPEG (libjpeg: Premature end of JPEG file); PIL refuses it too")
        }
        let w = Int(result.width), h = Int(result.height), n = w * h
        let warning = result.warnings > 0 ? message + (result.warnings > 1 ? " (and \(result.warnings - 1) more)" : "") : nil
        if result.components == 3 { return (RGBImage(width: w, height: h, pixels: Array(UnsafeBufferPointer(start: raw, count: n * 3))), warning) }
        guard result.components == 4 else { throw ImageError("\(name): JPEG decoded to \(result.components) components") }
        // PIL reads 4-component JPEGs as inverted CMYK ("CMYK;I") and converts to RGB with
        // nk = 255 − k; c' = nk − c·nk/255 (rounded as PIL's MULDIV255).
        var rgb = [UInt8](repeating: 0, count: n * 3)
        func muldiv255(_ a: Int, _ b: Int) -> Int { let t = a * b + 128; return ((t >> 8) + t) >> 8 }
        for i in 0..<n {
            let c = 255 - Int(raw[4 * i]), m = 255 - Int(raw[4 * i + 1]), y = 255 - Int(raw[4 * i + 2]), k = 255 - Int(raw[4 * i + 3])
            let nk = 255 - k
            rgb[3 * i] = UInt8(clamping: nk - muldiv255(c, nk))
            rgb[3 * i + 1] = UInt8(clamping: nk - muldiv255(m, nk))
            rgb[3 * i + 2] = UInt8(clamping: nk - muldiv255(y, nk))
        }
        return (RGBImage(width: w, height: h, pixels: rgb), warning)
    }
}
