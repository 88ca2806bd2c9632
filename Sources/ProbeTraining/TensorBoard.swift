import Foundation

/// TensorBoard event files without TensorFlow: `events.out.tfevents.<time>.<host>` in a directory,
/// TFRecord framing (length, masked CRC-32C of the length, the record, its masked CRC-32C) around
/// `Event` protocol buffers (wall_time, step, a `Summary` of scalar values), as PyTorch's
/// `SummaryWriter` writes them, so that TensorBoard and its readers list them.
public final class TensorBoardWriter {
    public let path: URL
    private let handle: FileHandle

    public init(directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "host"
        path = directory.appendingPathComponent("events.out.tfevents.\(Int(Date().timeIntervalSince1970)).\(host).\(getpid())")
        guard FileManager.default.createFile(atPath: path.path, contents: nil), let h = FileHandle(forWritingAtPath: path.path) else {
            throw TrainingError("\(path.path): cannot write TensorBoard events")
        }
        handle = h
        // The first event names the format.
        var event = Proto()
        event.double(1, Date().timeIntervalSince1970)
        event.bytes(3, Data("brain.Event:2".utf8))
        try write(event.data)
    }

    deinit { try? handle.close() }

    /// One scalar at a step (upstream's tags: `test_v1_<head>/test_acc1`, `lr`, ...).
    public func scalar(_ tag: String, _ value: Double, step: Int) throws {
        try summaryValue(tag, step: step) { $0.float(2, Float(value)) }
    }

    /// One image (an encoded PNG or JPEG of `width` × `height` RGB) at a step.
    public func image(_ tag: String, encoded: Data, width: Int, height: Int, step: Int) throws {
        var img = Proto()
        img.varint(1, UInt64(height))
        img.varint(2, UInt64(width))
        img.varint(3, 3)   // colorspace: RGB
        img.bytes(4, encoded)
        try summaryValue(tag, step: step) { $0.bytes(4, img.data) }
    }

    /// An event holding a summary of one tagged value, its payload written by `fill`.
    private func summaryValue(_ tag: String, step: Int, _ fill: (inout Proto) -> Void) throws {
        var v = Proto()
        v.bytes(1, Data(tag.utf8))
        fill(&v)
        var summary = Proto()
        summary.bytes(1, v.data)
        var event = Proto()
        event.double(1, Date().timeIntervalSince1970)
        event.varint(2, UInt64(bitPattern: Int64(step)))
        event.bytes(5, summary.data)
        try write(event.data)
    }

    public func flush() throws { try handle.synchronize() }

    private func write(_ record: Data) throws {
        var length = UInt64(record.count).littleEndian
        let lengthBytes = withUnsafeBytes(of: &length) { Data($0) }
        var out = lengthBytes
        out += Self.le32(Self.maskedCRC(lengthBytes))
        out += record
        out += Self.le32(Self.maskedCRC(record))
        try handle.write(contentsOf: out)
    }

    static func le32(_ v: UInt32) -> Data { withUnsafeBytes(of: v.littleEndian) { Data($0) } }

    /// TFRecord's mask over CRC-32C: rotate right by 15, add 0xa282ead8.
    static func maskedCRC(_ data: Data) -> UInt32 {
        let c = crc32c(data)
        return ((c >> 15) | (c << 17)) &+ 0xa282_ead8
    }

    /// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78).
    static func crc32c(_ data: Data) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in data { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }

    private static let table: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    /// The protocol-buffer wire format, as far as events need it.
    struct Proto {
        var data = Data()
        mutating func key(_ field: Int, _ wire: UInt64) { raw(UInt64(field) << 3 | wire) }
        mutating func raw(_ v: UInt64) {
            var v = v
            while v >= 0x80 { data.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
            data.append(UInt8(v))
        }
        mutating func varint(_ field: Int, _ v: UInt64) { key(field, 0); raw(v) }
        mutating func double(_ field: Int, _ v: Double) { key(field, 1); data += withUnsafeBytes(of: v.bitPattern.littleEndian) { Data($0) } }
        mutating func float(_ field: Int, _ v: Float) { key(field, 5); data += withUnsafeBytes(of: v.bitPattern.littleEndian) { Data($0) } }
        mutating func bytes(_ field: Int, _ v: Data) { key(field, 2); raw(UInt64(v.count)); data += v }
    }
}
