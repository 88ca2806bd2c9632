import Foundation

/// The framing MD5 and SHA-256 share: input cut into 64-byte blocks for a compression function,
/// the last padded with 0x80, zeros and the message length in bits (little-endian for MD5,
/// big-endian for SHA-256).
struct BlockBuffer {
    private var pending: [UInt8] = []
    private var length: UInt64 = 0

    mutating func absorb(_ data: UnsafeRawBufferPointer, _ block: (UnsafeRawPointer) -> Void) {
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

    /// Pads and compresses the final block(s).
    mutating func finish(bigEndianLength: Bool, _ block: (UnsafeRawPointer) -> Void) {
        let bits = length &* 8
        var tail: [UInt8] = [0x80] + [UInt8](repeating: 0, count: (55 &- pending.count + 64) % 64)
        let order = bigEndianLength ? Array((0..<8).reversed()) : Array(0..<8)
        for i in order { tail.append(UInt8(truncatingIfNeeded: bits >> (8 * UInt64(i)))) }
        tail.withUnsafeBytes { absorb($0, block) }
        precondition(pending.isEmpty)
    }

    /// A file's digest by `update` and `digest`, read in 8 MiB pieces.
    static func hashFile<H>(_ path: String, _ hasher: H, update: (inout H, Data) -> Void, digest: (inout H) -> String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw HubError("\(path): cannot be read") }
        defer { try? handle.close() }
        var h = hasher
        while let chunk = try handle.read(upToCount: 8 << 20), !chunk.isEmpty { update(&h, chunk) }
        return digest(&h)
    }
}
