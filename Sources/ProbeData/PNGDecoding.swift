import CSPNG
import CZlib
import Foundation

/// PNG to RGB as PIL's PngImagePlugin opens it and `convert("RGB")` converts it, mode by mode
/// from the colour type and bit depth (libspng decodes the samples, unconverted):
///
/// | PNG | PIL mode (raw mode) | RGB |
/// |---|---|---|
/// | grey 1 bit | `1` | 0 or 255 |
/// | grey 2/4/8 bits | `L` (`L;2`, `L;4`) | the value scaled by 85 / 17 / 1, replicated |
/// | grey 16 bits | `I` or `I;16` (`I;16B`) | the value clamped to 255 (not its high byte) |
/// | grey+alpha 8/16 | `LA` / `RGBA` (`LA;16B`) | the (high byte of the) grey, replicated |
/// | RGB, RGBA 8/16 | `RGB`, `RGBA` (`…;16B`) | the (high bytes of the) colour |
/// | palette 1/2/4/8 | `P` | the palette entry; an index past the palette reads PIL's default greyscale entry |
///
/// `tRNS`, `gAMA`, `sRGB`, `iCCP` and `cHRM` change nothing (PIL's `convert("RGB")` applies
/// none); Adam7-interlaced images decode as PIL decodes them. Like PIL, a file is refused when a
/// chunk before the image data fails its CRC, a zTXt chunk names a compression method other
/// than deflate (PIL's iCCP check reads the wrong byte and passes any), or a compressed text or ICC chunk inflates past 1 MB (PIL's
/// `MAX_TEXT_CHUNK`), or text chunks hold more than 64 MB (`MAX_TEXT_MEMORY`). Like PIL, image
/// data CRCs are not checked, a file may end without IEND once the image is complete, and
/// IHDR's compression-method byte is not checked (deflate is the only method there is).
enum PNGDecoding {
    static let maxTextChunk = 1 << 20
    static let maxTextMemory = 64 << 20

    static func decode(_ data: Data, name: String) throws -> RGBImage {
        try checkChunks(data, name: name)
        guard let ctx = spng_ctx_new(0) else { throw ImageError("\(name): cannot start the PNG decoder") }
        defer { spng_ctx_free(ctx) }
        return try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> RGBImage in
            func check(_ r: Int32, _ what: String) throws {
                if r != 0 { throw ImageError("\(name): \(what) (libspng: \(String(cString: spng_strerror(r))))") }
            }
            try check(spng_set_image_limits(ctx, 1 << 24, 1 << 24), "PNG limits")
            // Ancillary chunks are cached up to 64 MB (PIL's text memory), none over 64 MB each.
            try check(spng_set_chunk_limits(ctx, 64 << 20, 64 << 20), "PNG limits")
            // CRCs before the image data were checked above as PIL does; PIL skips the IDAT CRCs.
            try check(spng_set_crc_action(ctx, Int32(SPNG_CRC_USE.rawValue), Int32(SPNG_CRC_USE.rawValue)), "PNG CRC policy")
            try check(spng_set_png_buffer(ctx, raw.baseAddress, raw.count), "not a readable PNG")
            var ihdr = spng_ihdr()
            try check(spng_get_ihdr(ctx, &ihdr), "not a readable PNG")
            let w = Int(ihdr.width), h = Int(ihdr.height)
            guard w > 0, h > 0, w * h <= ImageDecoder.maxPixels else {
                throw ImageError("\(name): PNG of \(w)×\(h) pixels is refused (over \(ImageDecoder.maxPixels), PIL's decompression-bomb limit)")
            }
            var palette: [(UInt8, UInt8, UInt8)] = []
            if ihdr.color_type == 3 {
                var plte = spng_plte()
                try check(spng_get_plte(ctx, &plte), "palette PNG without a readable palette")
                withUnsafeBytes(of: plte.entries) { e in
                    let entries = e.bindMemory(to: spng_plte_entry.self)
                    palette = (0..<Int(min(plte.n_entries, 256))).map { (entries[$0].red, entries[$0].green, entries[$0].blue) }
                }
            }
            let fmt = Int32(SPNG_FMT_RAW.rawValue)
            var size = 0
            try check(spng_decoded_image_size(ctx, fmt, &size), "PNG size")
            var samples = [UInt8](repeating: 0, count: size)
            try samples.withUnsafeMutableBytes { try check(spng_decode_image(ctx, $0.baseAddress, size, fmt, 0), "damaged PNG") }
            return try convert(samples, width: w, height: h, colorType: Int(ihdr.color_type), depth: Int(ihdr.bit_depth), palette: palette, name: name)
        }
    }

    /// PIL's conversion of the decoded samples (big-endian, rows packed to whole bytes) to RGB.
    static func convert(_ s: [UInt8], width w: Int, height h: Int, colorType: Int, depth: Int,
                        palette: [(UInt8, UInt8, UInt8)], name: String) throws -> RGBImage {
        let channels: Int
        switch colorType {
        case 0, 3: channels = 1
        case 2: channels = 3
        case 4: channels = 2
        case 6: channels = 4
        default: throw ImageError("\(name): PNG colour type \(colorType) is not defined")
        }
        let rowBytes = (w * channels * depth + 7) / 8
        guard s.count >= rowBytes * h else { throw ImageError("\(name): PNG decoded to \(s.count) bytes for \(w)×\(h)") }
        var out = [UInt8](repeating: 0, count: w * h * 3)
        /// Sample `c` of pixel `x` of row `y`, as stored (sub-byte depths unscaled, 16 bits whole).
        func sample(_ y: Int, _ x: Int, _ c: Int) -> Int {
            let i = x * channels + c, row = y * rowBytes
            switch depth {
            case 16: return Int(s[row + 2 * i]) << 8 | Int(s[row + 2 * i + 1])
            case 8: return Int(s[row + i])
            default:
                let bit = i * depth
                return Int(s[row + bit / 8] >> (8 - depth - bit % 8)) & ((1 << depth) - 1)
            }
        }
        for y in 0..<h {
            for x in 0..<w {
                let o = (y * w + x) * 3
                var r = 0, g = 0, b = 0
                switch (colorType, depth) {
                case (0, 16):
                    r = min(sample(y, x, 0), 255); g = r; b = r
                case (0, _), (4, _):
                    let v = sample(y, x, 0)
                    r = depth == 16 ? v >> 8 : v * (255 / ((1 << depth) - 1)); g = r; b = r
                case (3, _):
                    let v = sample(y, x, 0)
                    if v < palette.count { (r, g, b) = (Int(palette[v].0), Int(palette[v].1), Int(palette[v].2)) } else { (r, g, b) = (v, v, v) }
                default:
                    let shift = depth == 16 ? 8 : 0
                    r = sample(y, x, 0) >> shift; g = sample(y, x, 1) >> shift; b = sample(y, x, 2) >> shift
                }
                out[o] = UInt8(r); out[o + 1] = UInt8(g); out[o + 2] = UInt8(b)
            }
        }
        return RGBImage(width: w, height: h, pixels: out)
    }

    /// PIL's checks on the chunk stream (see the type's comment); stops at the end of the data.
    static func checkChunks(_ data: Data, name: String) throws {
        let bytes = [UInt8](data)
        var at = 8, seenIDAT = false, textMemory = 0
        func be32(_ i: Int) -> Int { Int(bytes[i]) << 24 | Int(bytes[i + 1]) << 16 | Int(bytes[i + 2]) << 8 | Int(bytes[i + 3]) }
        while at + 8 <= bytes.count {
            let length = be32(at)
            let type = String(decoding: bytes[(at + 4)..<(at + 8)], as: UTF8.self)
            guard length <= Int(Int32.max), at + 12 + length <= bytes.count else { return }   // libspng judges the truncation
            let body = bytes[(at + 8)..<(at + 8 + length)]
            if type == "IDAT" { seenIDAT = true }
            if !seenIDAT {
                let crc = bytes[(at + 4)..<(at + 8 + length)].withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, uInt($0.count))) }
                guard crc == UInt32(be32(at + 8 + length)) else { throw ImageError("\(name): broken PNG (bad CRC of its \(type) chunk); PIL refuses it too") }
            }
            switch type {
            case "tEXt":
                textMemory += length
            case "zTXt", "iCCP":
                guard let nul = body.firstIndex(of: 0), nul + 1 < body.endIndex else { break }
                // PIL checks zTXt's method byte; for iCCP it reads the name's NUL instead, so any passes.
                guard type == "iCCP" || body[nul + 1] == 0 else { throw ImageError("\(name): PNG \(type) chunk with unknown compression method \(body[nul + 1]); PIL refuses it too") }
                let inflated = inflatedSize(body[(nul + 2)...], limit: maxTextChunk)
                if inflated > maxTextChunk { throw ImageError("\(name): PNG \(type) chunk inflates past \(maxTextChunk) bytes; PIL refuses it too (MAX_TEXT_CHUNK)") }
                if type == "zTXt" { textMemory += inflated }
            case "iTXt":
                // keyword \0 compressed-flag method language \0 translated \0 text
                guard let nul = body.firstIndex(of: 0), nul + 2 < body.endIndex, body[nul + 1] != 0, body[nul + 2] == 0 else { textMemory += length; break }
                var rest = body[(nul + 3)...]
                for _ in 0..<2 { guard let z = rest.firstIndex(of: 0) else { rest = rest[rest.endIndex...]; break }; rest = rest[(z + 1)...] }
                let inflated = inflatedSize(rest, limit: maxTextChunk)
                if inflated > maxTextChunk { throw ImageError("\(name): PNG iTXt chunk inflates past \(maxTextChunk) bytes; PIL refuses it too (MAX_TEXT_CHUNK)") }
                textMemory += inflated
            case "IEND":
                return
            default: break
            }
            if textMemory > maxTextMemory { throw ImageError("\(name): PNG text chunks hold more than \(maxTextMemory) bytes; PIL refuses it too (MAX_TEXT_MEMORY)") }
            at += 12 + length
        }
    }

    /// Bytes a zlib stream inflates to, counting at most `limit` + 1 (a damaged stream counts
    /// what it gave: PIL reads such chunks as empty and goes on).
    static func inflatedSize(_ input: ArraySlice<UInt8>, limit: Int) -> Int {
        var stream = z_stream()
        guard inflateInit_(&stream, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else { return 0 }
        defer { inflateEnd(&stream) }
        var total = 0
        var scratch = [UInt8](repeating: 0, count: 1 << 16)
        input.withUnsafeBufferPointer { src in
            stream.next_in = UnsafeMutablePointer(mutating: src.baseAddress)
            stream.avail_in = uInt(src.count)
            while total <= limit {
                let (status, produced) = scratch.withUnsafeMutableBufferPointer { dst -> (Int32, Int) in
                    stream.next_out = dst.baseAddress
                    stream.avail_out = uInt(dst.count)
                    let s = inflate(&stream, Z_NO_FLUSH)
                    return (s, dst.count - Int(stream.avail_out))
                }
                total += produced
                if status != Z_OK || produced == 0 { break }
            }
        }
        return total
    }
}
