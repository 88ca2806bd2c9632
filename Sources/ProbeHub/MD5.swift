import Foundation

/// MD5 (RFC 1321), streaming: torchvision checks its dataset archives by it.
public struct MD5 {
    private var s: (UInt32, UInt32, UInt32, UInt32) = (0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476)
    private var pending: [UInt8] = []
    private var length: UInt64 = 0
    private static let shifts: [UInt32] = [7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
                                           5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15, 21, 6, 10, 15, 21,
                                           6, 10, 15, 21, 6, 10, 15, 21]
    private static let k: [UInt32] = (0..<64).map { UInt32(truncatingIfNeeded: Int64(abs(sin(Double($0 + 1))) * 4294967296)) }

    public init() {}

    public mutating func update(_ data: UnsafeRawBufferPointer) {
        length += UInt64(data.count)
        var start = 0
        if !pending.isEmpty {
            let take = min(64 - pending.count, data.count)
            pending += data[0..<take]
            start = take
            if pending.count == 64 { pending.withUnsafeBytes { block($0.baseAddress!) }; pending.removeAll(keepingCapacity: true) }
        }
        while start + 64 <= data.count { block(data.baseAddress! + start); start += 64 }
        if start < data.count { pending += data[start...] }
    }

    public mutating func update(_ data: Data) { data.withUnsafeBytes { update($0) } }

    public mutating func hexDigest() -> String {
        let bits = length &* 8
        var tail: [UInt8] = [0x80] + [UInt8](repeating: 0, count: (55 &- pending.count + 64) % 64)
        for i in 0..<8 { tail.append(UInt8(truncatingIfNeeded: bits >> (8 * UInt64(i)))) }
        let saved = length
        tail.withUnsafeBytes { update($0) }
        length = saved
        return [s.0, s.1, s.2, s.3].map { v in (0..<4).map { String(format: "%02x", (v >> (8 * $0)) & 0xFF) }.joined() }.joined()
    }

    public static func file(_ path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw HubError("\(path): cannot be read") }
        defer { try? handle.close() }
        var m = MD5()
        while let chunk = try handle.read(upToCount: 8 << 20), !chunk.isEmpty { m.update(chunk) }
        return m.hexDigest()
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
