import CTurboJPEG
import CZlib
import Foundation
import ProbeData

/// An RGB image whose colours say its class: a class hue on a noisy background, with a square
/// of a second colour at a seeded place.
public func classImage(_ cls: Int, width: Int, height: Int, seed: UInt64) -> RGBImage {
    var rng = AugmentRNG(seed: seed, epoch: 3, index: cls)
    let hues: [[Double]] = [[220, 40, 40], [40, 200, 60], [50, 70, 230], [230, 210, 40], [200, 60, 220], [40, 210, 210]]
    let base = hues[cls % hues.count]
    var px = [UInt8](repeating: 0, count: width * height * 3)
    let sx = rng.integer(0, max(width / 2, 1)), sy = rng.integer(0, max(height / 2, 1))
    for y in 0..<height {
        for x in 0..<width {
            let inSquare = x >= sx && x < sx + width / 3 && y >= sy && y < sy + height / 3
            for c in 0..<3 {
                let v = (inSquare ? 255 - base[c] : base[c]) + rng.uniform(-25, 25)
                px[(y * width + x) * 3 + c] = UInt8(max(0, min(255, v)))
            }
        }
    }
    return RGBImage(width: width, height: height, pixels: px)
}

/// An ImageFolder `root/<split>/<class>/<i>.jpg` of `classImage`s of varied sizes.
public func writeImageFolder(_ root: URL, splits: [(String, Int)], classes: [String], size: Int, seed: UInt64) throws {
    for (split, perClass) in splits {
        for (c, name) in classes.enumerated() {
            let dir = root.appendingPathComponent(split).appendingPathComponent(name)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            for i in 0..<perClass {
                let w = size + (i % 3) * size / 4, h = size + ((i + 1) % 3) * size / 5
                let img = classImage(c, width: w, height: h, seed: seed &+ UInt64(i * 31 + split.count))
                try ImageEncoder.jpeg(img, quality: 92).write(to: dir.appendingPathComponent(String(format: "%04d.jpg", i)))
            }
        }
    }
}

/// A 4-component (CMYK, Adobe) JPEG, as some datasets contain.
public func cmykJPEG(width: Int, height: Int) throws -> Data {
    guard let handle = tjInitCompress() else { throw CLIError("no JPEG encoder") }
    defer { tjDestroy(handle) }
    var px = [UInt8](repeating: 0, count: width * height * 4)
    for i in 0..<(width * height) { px[4 * i] = UInt8(i % 256); px[4 * i + 1] = 80; px[4 * i + 2] = UInt8((i * 7) % 256); px[4 * i + 3] = 30 }
    var out: UnsafeMutablePointer<UInt8>? = nil
    var size: UInt = 0
    let status = px.withUnsafeBufferPointer {
        tjCompress2(handle, $0.baseAddress, Int32(width), 0, Int32(height), Int32(TJPF_CMYK.rawValue), &out, &size, Int32(TJSAMP_444.rawValue), 90, 0)
    }
    defer { if let out { tjFree(out) } }
    guard status == 0, let out else { throw CLIError("CMYK JPEG encoding failed") }
    return Data(bytes: out, count: Int(size))
}

/// The bad-file set, added to `dir`: returns (unreadable file names, readable odd ones).
@discardableResult
public func addBadFiles(to dir: URL) throws -> (unreadable: [String], odd: [String]) {
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let good = try ImageEncoder.jpeg(classImage(0, width: 40, height: 30, seed: 9))
    try good.prefix(good.count / 2).write(to: dir.appendingPathComponent("truncated.jpg"))
    try Data().write(to: dir.appendingPathComponent("empty.jpg"))
    try Data("not an image, just text\n".utf8).write(to: dir.appendingPathComponent("text.jpg"))
    try cmykJPEG(width: 24, height: 20).write(to: dir.appendingPathComponent("cmyk.jpg"))
    try ImageEncoder.jpeg(RGBImage(width: 1, height: 1, pixels: [200, 10, 10])).write(to: dir.appendingPathComponent("one-pixel.jpg"))
    return (["empty.jpg", "text.jpg", "truncated.jpg"], ["cmyk.jpg", "one-pixel.jpg"])
}

/// A progressive JPEG (libjpeg-turbo), 4:2:0.
public func progressiveJPEG(_ image: RGBImage, quality: Int = 85) throws -> Data {
    guard let handle = tjInitCompress() else { throw CLIError("no JPEG encoder") }
    defer { tjDestroy(handle) }
    var out: UnsafeMutablePointer<UInt8>? = nil
    var size: UInt = 0
    let status = image.pixels.withUnsafeBufferPointer {
        tjCompress2(handle, $0.baseAddress, Int32(image.width), 0, Int32(image.height), Int32(TJPF_RGB.rawValue), &out, &size,
                    Int32(TJSAMP_420.rawValue), Int32(quality), TJFLAG_PROGRESSIVE)
    }
    defer { if let out { tjFree(out) } }
    guard status == 0, let out else { throw CLIError("progressive JPEG encoding failed") }
    return Data(bytes: out, count: Int(size))
}

/// The data-safety issue's hostile files, added to `dir`: returns (file name, the reason the
/// run must give).
@discardableResult
public func writeHostileImages(to dir: URL) throws -> [(String, String)] {
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let good = [UInt8](try ImageEncoder.jpeg(classImage(0, width: 30, height: 20, seed: 2)))
    let sof = good.indices.first { good[$0] == 0xFF && good[$0 + 1] == 0xC0 }!
    var twelve = good; twelve[sof + 4] = 12
    var bomb = good; bomb[sof + 5] = 0xFF; bomb[sof + 6] = 0xDC; bomb[sof + 7] = 0xFF; bomb[sof + 8] = 0xDC
    let png = [UInt8](try ImageEncoder.png(classImage(1, width: 20, height: 16, seed: 3)))
    func withIHDR(_ w: UInt32, _ h: UInt32) -> [UInt8] {
        var p = png
        for k in 0..<4 { p[16 + k] = UInt8(w >> (24 - 8 * k) & 255); p[20 + k] = UInt8(h >> (24 - 8 * k) & 255) }
        let crc = p[12..<29].withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, uInt($0.count))) }
        for k in 0..<4 { p[29 + k] = UInt8(crc >> (24 - 8 * k) & 255) }
        return p
    }
    let files: [(String, [UInt8], String)] = [
        ("twelve-bit.jpg", twelve, "precision 12"),
        ("bomb.jpg", bomb, "65500×65500 pixels is refused"),
        ("bomb.png", withIHDR(60000, 60000), "60000×60000 pixels is refused"),
        ("gif.jpg", Array("GIF89a".utf8) + [1, 0, 1, 0, 0, 0, 0, 0x3B], "looks like GIF"),
        ("truncated.png", Array(png.prefix(png.count - 30)), "damaged PNG"),
        ("zero-width.png", withIHDR(0, 16), "PNG"),
    ]
    for (name, bytes, _) in files { try Data(bytes).write(to: dir.appendingPathComponent(name)) }
    return files.map { ($0.0, $0.2) }
}
