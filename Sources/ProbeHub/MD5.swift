import Foundation

/// MD5 (RFC 1321), streaming: torchvision checks its dataset archives by it.
public struct MD5 {
    private var s: (UInt32, UInt32, UInt32, UInt32) = (0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476)
    private var buffer = BlockBuffer()
    private static let shifts: [UInt32] = [7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
                                           5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15, 21, 6, 10, 15, 21,
                                           6, 10, 15, 21, 6, 10, 15, 21]
    private static let k: [UInt32] = (0..<64).map { UInt32(truncatingIfNeeded: Int64(abs(sin(Double($0 + 1))) * 4294967296)) }

    public init() {}

    public mutating func update(_ data: UnsafeRawBufferPointer) {
        var b = buffer
        b.absorb(data) { block($0) }
        buffer = b
    }

    public mutating func update(_ data: Data) { data.withUnsafeBytes { update($0) } }

    public mutating func hexDigest() -> String {
        var b = buffer
        b.finish(bigEndianLength: false) { block($0) }
        buffer = b
        return [s.0, s.1, s.2, s.3].map { v in (0..<4).map { String(format: "%02x", (v >> (8 * $0)) & 0xFF) }.joined() }.joined()
    }

    public static func file(_ path: String) throws -> String {
        try BlockBuffer.hashFile(path, MD5(), update: { $0.update($1) }, digest: { $0.hexDigest() })
    }

    private mutating func block(_ p: UnsafeRawPointer) {
        let m = (0..<16).map { p.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self).littleEndian }
        var (a, b, c, d) = s
        for i in 0..<64 {
            var f: UInt32, g: Int
            switch i {
            case 0..<16: f = (b & c) | (~b & d); g = i
            case 16..<32: f = (d & b) | (~d & c); g = (5 * i + 1) % 16
            case 32..<48: f = b ^ c ^ d; g = (3 * i + 5) % 16
            default: f = c ^ (b | ~d); g = (7 * i) % 16
            }
            f = f &+ a &+ Self.k[i] &+ m[g]
            a = d; d = c; c = b
            b = b &+ ((f << Self.shifts[i]) | (f >> (32 - Self.shifts[i])))
        }
        s = (s.0 &+ a, s.1 &+ b, s.2 &+ c, s.3 &+ d)
    }
}
