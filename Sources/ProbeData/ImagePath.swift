import Foundation

/// A file path as Linux holds it: bytes, not necessarily UTF-8. Foundation's `URL` and `String`
/// paths replace invalid UTF-8 with U+FFFD (the file then "does not exist"), so dataset files are
/// listed, opened and sorted as bytes, and shown with `\xNN` escapes.
public struct ImagePath: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]
    public init(bytes: [UInt8]) { self.bytes = bytes }
    public init(_ path: String) { bytes = Array(path.utf8) }
    public init(_ url: URL) { bytes = url.withUnsafeFileSystemRepresentation { p in p.map { Array(UnsafeBufferPointer(start: UnsafeRawPointer($0).assumingMemoryBound(to: UInt8.self), count: strlen($0))) } ?? Array(url.path.utf8) } }

    /// `self/name`.
    public func appending(_ name: [UInt8]) -> ImagePath { ImagePath(bytes: bytes.last == 0x2F ? bytes + name : bytes + [0x2F] + name) }
    public func appending(_ name: String) -> ImagePath { appending(Array(name.utf8)) }

    public var lastComponent: [UInt8] { Array(bytes.split(separator: 0x2F, omittingEmptySubsequences: true).last ?? []) }

    /// The path for messages: valid UTF-8 as is, other bytes as `\xNN`.
    public var description: String { Self.display(bytes) }

    static func display(_ bytes: [UInt8]) -> String {
        if let s = String(validating: bytes, as: UTF8.self) { return s }
        var out = ""
        for c in codePoints(bytes) {
            if (0xDC80...0xDCFF).contains(c) { out += String(format: "\\x%02X", c - 0xDC00) } else { out.unicodeScalars.append(Unicode.Scalar(c)!) }
        }
        return out
    }

    /// Python's order of `str` paths (what torchvision sorts): bytes decoded as UTF-8 with
    /// `surrogateescape` (an undecodable byte b is U+DC00+b), compared code point by code point.
    public static func pythonOrder(_ a: [UInt8], _ b: [UInt8]) -> Bool { codePoints(a).lexicographicallyPrecedes(codePoints(b)) }

    static func codePoints(_ bytes: [UInt8]) -> [UInt32] {
        var out: [UInt32] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            let lead = bytes[i]
            let n = lead < 0x80 ? 1 : lead >> 5 == 0b110 ? 2 : lead >> 4 == 0b1110 ? 3 : lead >> 3 == 0b11110 ? 4 : 0
            if n > 0, i + n <= bytes.count, let s = String(validating: bytes[i..<(i + n)], as: UTF8.self), let scalar = s.unicodeScalars.first {
                out.append(scalar.value); i += n
            } else {
                out.append(0xDC00 + UInt32(lead)); i += 1
            }
        }
        return out
    }

    /// Files larger than this are refused before they are read (no image we decode comes near:
    /// the largest PIL accepts is ~179 M pixels).
    public static let maxFileBytes = 1 << 30

    /// The file's bytes.
    public func read() throws -> Data {
        let fd = bytes.withUnsafeBufferPointer { b -> Int32 in
            var z = Array(b) + [0]
            return z.withUnsafeMutableBufferPointer { open(UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), O_RDONLY | O_CLOEXEC) }
        }
        guard fd >= 0 else { throw ImageError("\(self): cannot open (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw ImageError("\(self): cannot stat (\(String(cString: strerror(errno))))") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw ImageError("\(self): not a regular file") }
        let size = Int(st.st_size)
        guard size <= Self.maxFileBytes else { throw ImageError("\(self): \(size) bytes is larger than any image we read (\(Self.maxFileBytes))") }
        var data = Data(count: size)
        var got = 0
        try data.withUnsafeMutableBytes { (buf: UnsafeMutableRawBufferPointer) in
            while got < size {
                let n = Foundation.read(fd, buf.baseAddress! + got, size - got)
                if n < 0 && errno == EINTR { continue }
                guard n >= 0 else { throw ImageError("\(self): read failed (\(String(cString: strerror(errno))))") }
                if n == 0 { break }   // shrank while read: decode what is there
                got += n
            }
        }
        return got == size ? data : data.prefix(got)
    }
}
