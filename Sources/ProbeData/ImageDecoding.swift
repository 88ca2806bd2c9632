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

/// Decodes JPEG (libjpeg, `JPEGDecoding.swift`) and PNG (libspng, `PNGDecoding.swift`) files to
/// RGB as PIL does with `Image.open(f).convert("RGB")`, which torchvision's loaders call.
///
/// Limits, checked on the declared size before anything is allocated for it: at most
/// `maxPixels` pixels (PIL's `DecompressionBombError` threshold, 2 × `Image.MAX_IMAGE_PIXELS`),
/// so one image costs at most ~0.54 GB of RGB (~1.4 GB while a 16-bit RGBA PNG is converted);
/// JPEGs of at most `maxScans` scans. Every decode starts from fresh library state: a failure of
/// any kind leaves the decoder ready for the next file.
///
/// One decoder per thread: `lastWarning` belongs to the thread that decodes.
public final class ImageDecoder {
    /// PIL refuses images above 2 × 89,478,485 pixels as decompression bombs.
    public static let maxPixels = 2 * 89_478_485
    /// libjpeg-turbo's own scan limit for hostile progressive files (TurboJPEG's TJFLAG_LIMITSCANS).
    public static let maxScans = 500

    /// The warning of the last successful decode (libjpeg's corrupt-data messages that PIL
    /// decodes through), nil when it was clean.
    public internal(set) var lastWarning: String?

    public init() {}

    /// Decodes with a decoder of its own (for one-off use).
    public static func decode(_ data: Data, name: String) throws -> RGBImage { try ImageDecoder().decode(data, name: name) }

    /// The RGB pixels of the file at `path` (bytes: any name Linux allows).
    public func decode(contentsOf path: ImagePath) throws -> RGBImage { try decode(try path.read(), name: path.description) }
    public func decode(contentsOf url: URL) throws -> RGBImage { try decode(contentsOf: ImagePath(url)) }

    public func decode(_ data: Data, name: String) throws -> RGBImage {
        lastWarning = nil
        if data.count >= 3, data[data.startIndex] == 0xFF, data[data.startIndex + 1] == 0xD8, data[data.startIndex + 2] == 0xFF {
            let (image, warning) = try JPEGDecoding.decode(data, name: name)
            lastWarning = warning
            return image
        }
        if data.count >= 8, Array(data.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] {
            return try PNGDecoding.decode(data, name: name)
        }
        throw ImageError("\(name): not a JPEG or PNG file (\(data.count) bytes\(Self.sniff(data).map { ", looks like \($0)" } ?? ""))")
    }

    /// What a file we do not decode looks like, for the message.
    static func sniff(_ data: Data) -> String? {
        let head = Array(data.prefix(12))
        func starts(_ s: [UInt8]) -> Bool { head.count >= s.count && Array(head.prefix(s.count)) == s }
        if starts(Array("GIF8".utf8)) { return "GIF" }
        if starts(Array("BM".utf8)) { return "BMP" }
        if head.count >= 12, starts(Array("RIFF".utf8)), Array(head[8..<12]) == Array("WEBP".utf8) { return "WebP" }
        if starts([0x49, 0x49, 0x2A, 0x00]) || starts([0x4D, 0x4D, 0x00, 0x2A]) { return "TIFF" }
        if starts([0xFF, 0xD8]) { return "a JPEG without a marker after SOI" }
        return nil
    }
}
