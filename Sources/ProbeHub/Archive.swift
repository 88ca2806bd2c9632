import CZlib
import Foundation

/// Extracts .tar, .tar.gz and .tgz archives as they stream from disk (gzip inflated in 1 MiB
/// pieces, tar entries written as their bytes arrive: no second copy of the archive in memory).
/// Regular files and directories are written; GNU long names and PAX `path` records are
/// followed; an entry whose path would leave the destination (absolute, `..`) is refused naming
/// it; links and devices are skipped and counted.
public enum Archive {
    public struct Summary { public var files = 0, directories = 0, skipped = 0, bytes = 0 }

    public static func extract(_ archive: URL, into destination: URL) throws -> Summary {
        guard let input = FileHandle(forReadingAtPath: archive.path) else { throw HubError("\(archive.path): cannot be read") }
        defer { try? input.close() }
        try FileManager.default.createDirectory(at: destination, withIntermediateDirectories: true)
        let head = try input.read(upToCount: 2) ?? Data()
        try input.seek(toOffset: 0)
        var tar = TarReader(destination: destination, archive: archive.path)
        if head == Data([0x1f, 0x8b]) {
            var stream = z_stream()
            guard inflateInit2_(&stream, 16 + MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else { throw HubError("zlib failed to start") }
            defer { inflateEnd(&stream) }
            var out = [UInt8](repeating: 0, count: 1 << 20)
            var ended = false
            while !ended, let chunk = try input.read(upToCount: 1 << 20), !chunk.isEmpty {
                try chunk.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
                    stream.next_in = UnsafeMutablePointer(mutating: raw.bindMemory(to: UInt8.self).baseAddress!)
                    stream.avail_in = UInt32(raw.count)
                    repeat {
                        let produced: Int = try out.withUnsafeMutableBufferPointer { o in
                            stream.next_out = o.baseAddress!
                            stream.avail_out = UInt32(o.count)
                            let r = inflate(&stream, Z_NO_FLUSH)
                            guard r == Z_OK || r == Z_STREAM_END || r == Z_BUF_ERROR else {
                                throw HubError("\(archive.path): not a valid gzip stream (zlib \(r)) after \(stream.total_in) bytes")
                            }
                            if r == Z_STREAM_END { ended = true }
                            return o.count - Int(stream.avail_out)
                        }
                        try out.withUnsafeBytes { try tar.feed(UnsafeRawBufferPointer(rebasing: $0[0..<produced])) }
                    } while !ended && (stream.avail_out == 0 || stream.avail_in > 0)
                }
            }
            guard ended else { throw HubError("\(archive.path): the gzip stream ends early (a truncated download?)") }
        } else {
            while let chunk = try input.read(upToCount: 1 << 20), !chunk.isEmpty { try chunk.withUnsafeBytes { try tar.feed($0) } }
        }
        try tar.finish()
        return tar.summary
    }
}

/// A tar stream's state: 512-byte headers, then each entry's data padded to 512.
struct TarReader {
    let destination: URL, archive: String
    var summary = Archive.Summary()
    private var header = [UInt8]()
    private var remaining = 0, padding = 0
    private var sink: FileHandle?
    private var longName: String?, paxPath: String?
    private var meta: [UInt8]?    // a GNU long-name or PAX record's data, collected
    private var metaKind: UInt8 = 0
    private var ended = false

    init(destination: URL, archive: String) { self.destination = destination; self.archive = archive }

    mutating func feed(_ data: UnsafeRawBufferPointer) throws {
        var i = 0
        while i < data.count {
            if ended { return }
            if remaining > 0 {
                let n = min(remaining, data.count - i)
                let piece = UnsafeRawBufferPointer(rebasing: data[i..<(i + n)])
                if let sink { try sink.write(contentsOf: Data(piece)); summary.bytes += n } else if meta != nil { meta! += piece }
                remaining -= n; i += n
                if remaining == 0 { try endEntry() }
                continue
            }
            if padding > 0 { let n = min(padding, data.count - i); padding -= n; i += n; continue }
            let n = min(512 - header.count, data.count - i)
            header += data[i..<(i + n)]
            i += n
            if header.count == 512 { try startEntry(); header.removeAll(keepingCapacity: true) }
        }
    }

    mutating func finish() throws {
        if remaining > 0 || sink != nil { throw HubError("\(archive): the tar stream ends inside an entry (a truncated archive?)") }
    }

    private func field(_ at: Int, _ length: Int) -> String {
        let bytes = header[at..<(at + length)].prefix { $0 != 0 }
        return String(decoding: bytes, as: UTF8.self)
    }

    private mutating func startEntry() throws {
        if header.allSatisfy({ $0 == 0 }) { ended = true; return }
        let sizeField = field(124, 12).trimmingCharacters(in: .whitespaces)
        guard let size = Int(sizeField.isEmpty ? "0" : sizeField, radix: 8), size >= 0 else { throw HubError("\(archive): a tar header with size '\(sizeField)'") }
        let type = header[156]
        var name = field(0, 100)
        let prefix = field(345, 155)
        if field(257, 5) == "ustar", !prefix.isEmpty { name = prefix + "/" + name }
        if let l = longName { name = l; longName = nil }
        if let p = paxPath { name = p; paxPath = nil }
        remaining = size
        padding = (512 - size % 512) % 512
        switch type {
        case UInt8(ascii: "L"), UInt8(ascii: "x"):
            meta = []; metaKind = type
        case UInt8(ascii: "g"):
            meta = []; metaKind = type
        case 0, UInt8(ascii: "0"), UInt8(ascii: "7"):
            let url = try safe(name)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            guard FileManager.default.createFile(atPath: url.path, contents: nil), let h = FileHandle(forWritingAtPath: url.path) else {
                throw HubError("\(url.path): cannot be written")
            }
            sink = h
            summary.files += 1
        case UInt8(ascii: "5"):
            try FileManager.default.createDirectory(at: try safe(name), withIntermediateDirectories: true)
            summary.directories += 1
        default:
            summary.skipped += 1
        }
        if remaining == 0 { try endEntry() }
    }

    private mutating func endEntry() throws {
        if let s = sink { try s.close(); sink = nil }
        if let m = meta {
            if metaKind == UInt8(ascii: "L") { longName = String(decoding: m.prefix { $0 != 0 }, as: UTF8.self) }
            if metaKind == UInt8(ascii: "x") {
                // PAX records: "<length> <key>=<value>\n".
                for record in String(decoding: m, as: UTF8.self).split(separator: "\n") {
                    if let eq = record.firstIndex(of: "="), let sp = record.firstIndex(of: " "), record[record.index(after: sp)..<eq] == "path" {
                        paxPath = String(record[record.index(after: eq)...])
                    }
                }
            }
            meta = nil
        }
    }

    /// The entry's path under the destination; refused when it would leave it.
    private func safe(_ name: String) throws -> URL {
        let parts = name.split(separator: "/").filter { $0 != "." }
        guard !name.hasPrefix("/"), !parts.contains(".."), !parts.isEmpty else {
            throw HubError("\(archive): entry '\(name)' would be written outside \(destination.path); refused")
        }
        return parts.reduce(destination) { $0.appendingPathComponent(String($1)) }
    }
}
