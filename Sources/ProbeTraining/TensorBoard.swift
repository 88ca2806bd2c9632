import Foundation
import SwiftProtobuf

/// TensorBoard event files without TensorFlow: `events.out.tfevents.<time>.<host>` in a directory,
/// TFRecord framing (length, masked CRC-32C of the length, the record, its masked CRC-32C) around
/// `Event` messages, as PyTorch's `SummaryWriter` writes them, so that TensorBoard and its readers
/// list them. The messages are swift-protobuf's, generated from TensorBoard's own schema
/// (TensorBoardProto/, by tools/generate_tensorboard_messages.sh).
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
        var event = Tensorboard_Event()
        event.wallTime = Date().timeIntervalSince1970
        event.fileVersion = "brain.Event:2"
        try write(event)
    }

    deinit { try? handle.close() }

    /// One scalar at a step (upstream's tags: `test_v1_<head>/test_acc1`, `lr`, ...).
    public func scalar(_ tag: String, _ value: Double, step: Int) throws {
        try summaryValue(tag, step: step) { $0.simpleValue = Float(value) }
    }

    /// One image (an encoded PNG or JPEG of `width` × `height` RGB) at a step.
    public func image(_ tag: String, encoded: Data, width: Int, height: Int, step: Int) throws {
        var image = Tensorboard_Summary.Image()
        image.height = Int32(clamping: height)
        image.width = Int32(clamping: width)
        image.colorspace = 3   // RGB
        image.encodedImageString = encoded
        try summaryValue(tag, step: step) { $0.image = image }
    }

    /// An event holding a summary of one tagged value, its payload set by `fill`.
    private func summaryValue(_ tag: String, step: Int, _ fill: (inout Tensorboard_Summary.Value) -> Void) throws {
        var value = Tensorboard_Summary.Value()
        value.tag = tag
        fill(&value)
        var event = Tensorboard_Event()
        event.wallTime = Date().timeIntervalSince1970
        event.step = Int64(step)
        event.summary.value = [value]
        try write(event)
    }

    public func flush() throws { try handle.synchronize() }

    private func write(_ event: Tensorboard_Event) throws {
        let record = try event.serializedBytes() as Data
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

    /// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78). Kept here: none of the libraries in
    /// reach exports it (zlib's and compress-nio's CRC is CRC-32/IEEE, swift-crypto has none).
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
}
