import CZlib
import Foundation

/// A minimal reader of MATLAB level-5 MAT-files (little-endian), enough for dataset annotations
/// (Stanford Cars' devkit): numeric arrays, char arrays, cells and struct arrays, compressed
/// (miCOMPRESSED, zlib) or not. Every size and offset read from the file is checked before use.
public enum MATValue: Equatable {
    case numeric([Double], dims: [Int])
    case char(String, dims: [Int])
    case cell([MATValue], dims: [Int])
    case structArray(fields: [String], elements: [[String: MATValue]], dims: [Int])

    /// The value as one number (a 1×1 numeric array).
    public var scalar: Double? { if case let .numeric(v, _) = self, v.count == 1 { return v[0] }; return nil }
    public var string: String? { if case let .char(s, _) = self { return s }; return nil }
}

public struct MATFile {
    public let path: String
    public let variables: [String: MATValue]

    public init(path: String) throws {
        self.path = path
        guard let data = FileManager.default.contents(atPath: path) else { throw DataError("\(path): cannot be read") }
        guard data.count >= 128 else { throw DataError("\(path): \(data.count) bytes, shorter than a MAT-file header") }
        let bytes = [UInt8](data)
        guard bytes[126] == UInt8(ascii: "I"), bytes[127] == UInt8(ascii: "M") else {
            throw DataError("\(path): not a little-endian MATLAB 5 MAT-file (v7.3 files are HDF5: not read here)")
        }
        var vars: [String: MATValue] = [:]
        var p = MATParser(bytes: bytes, path: path)
        var offset = 128
        while offset + 8 <= bytes.count {
            let (name, value, next) = try p.element(at: offset, end: bytes.count)
            if let name, let value { vars[name] = value }
            offset = next
        }
        variables = vars
    }

    public subscript(_ name: String) -> MATValue? { variables[name] }
}

struct MATParser {
    var bytes: [UInt8]
    let path: String

    func u32(_ at: Int) throws -> UInt32 {
        guard at >= 0, at + 4 <= bytes.count else { throw DataError("\(path): truncated at byte \(at)") }
        return UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
    }

    /// A data element's (type, data start, size, next element's offset), small format included.
    func tag(_ at: Int, end: Int) throws -> (type: UInt32, start: Int, size: Int, next: Int) {
        let first = try u32(at)
        if first >> 16 != 0 {
            let size = Int(first >> 16)
            guard size <= 4, at + 8 <= end else { throw DataError("\(path): a small data element of \(size) bytes at \(at)") }
            return (first & 0xFFFF, at + 4, size, at + 8)
        }
        let size = Int(try u32(at + 4))
        let start = at + 8
        // Elements are padded to 8 bytes, except compressed ones.
        let (padded, o1) = size.addingReportingOverflow(first == 15 ? 0 : (8 - size % 8) % 8)
        let (next, o2) = start.addingReportingOverflow(padded)
        guard !o1, !o2, start + size <= end else { throw DataError("\(path): a data element of \(size) bytes at \(at) runs past its container") }
        return (first, start, size, min(next, end))
    }

    /// Numbers of a numeric data element, as Double.
    func numbers(type: UInt32, start: Int, size: Int) throws -> [Double] {
        let width: Int
        switch type {
        case 1, 2: width = 1
        case 3, 4: width = 2
        case 5, 6, 7: width = 4
        case 9, 12, 13: width = 8
        default: throw DataError("\(path): numeric data of type \(type) at \(start)")
        }
        let n = size / width
        var out = [Double](); out.reserveCapacity(n)
        for i in 0..<n {
            let o = start + i * width
            switch type {
            case 1: out.append(Double(Int8(bitPattern: bytes[o])))
            case 2: out.append(Double(bytes[o]))
            case 3: out.append(Double(Int16(bitPattern: UInt16(bytes[o]) | UInt16(bytes[o + 1]) << 8)))
            case 4: out.append(Double(UInt16(bytes[o]) | UInt16(bytes[o + 1]) << 8))
            case 5: out.append(Double(Int32(bitPattern: try u32(o))))
            case 6: out.append(Double(try u32(o)))
            case 7: out.append(Double(Float(bitPattern: try u32(o))))
            default:
                let v = UInt64(try u32(o)) | UInt64(try u32(o + 4)) << 32
                out.append(type == 9 ? Double(bitPattern: v) : type == 12 ? Double(Int64(bitPattern: v)) : Double(v))
            }
        }
        return out
    }

    /// One top-level or nested element: (name, value, next offset). Compressed elements are inflated.
    mutating func element(at: Int, end: Int) throws -> (String?, MATValue?, Int) {
        let t = try tag(at, end: end)
        if t.type == 15 {
            var inner = MATParser(bytes: try inflate(Array(bytes[t.start..<(t.start + t.size)])), path: path)
            let (name, value, _) = try inner.element(at: 0, end: inner.bytes.count)
            return (name, value, t.next)
        }
        guard t.type == 14 else { return (nil, nil, t.next) }   // not an array: skipped
        let (name, value) = try matrix(start: t.start, end: t.start + t.size)
        return (name, value, t.next)
    }

    /// A miMATRIX's content: flags, dimensions, name, then the class's data.
    mutating func matrix(start: Int, end: Int) throws -> (String, MATValue) {
        if start == end { return ("", .numeric([], dims: [0, 0])) }   // an empty matrix
        var o = start
        let flags = try tag(o, end: end)
        let cls = try u32(flags.start) & 0xFF
        o = flags.next
        let dimsTag = try tag(o, end: end)
        let dims = try numbers(type: dimsTag.type, start: dimsTag.start, size: dimsTag.size).map { Int($0) }
        var count = 1
        for d in dims {
            let (c, overflow) = count.multipliedReportingOverflow(by: d)
            guard d >= 0, !overflow, c <= 1 << 28 else { throw DataError("\(path): array dimensions \(dims)") }
            count = c
        }
        o = dimsTag.next
        let nameTag = try tag(o, end: end)
        let name = String(decoding: bytes[nameTag.start..<(nameTag.start + nameTag.size)], as: UTF8.self)
        o = nameTag.next
        switch cls {
        case 1:   // cell
            var items: [MATValue] = []
            for _ in 0..<count {
                let e = try tag(o, end: end)
                guard e.type == 14 else { throw DataError("\(path): a cell element of type \(e.type)") }
                items.append(try matrix(start: e.start, end: e.start + e.size).1)
                o = e.next
            }
            return (name, .cell(items, dims: dims))
        case 2:   // struct: field name length, names, then each element's fields
            let lenTag = try tag(o, end: end)
            let len = Int(try u32(lenTag.start))
            o = lenTag.next
            let namesTag = try tag(o, end: end)
            guard len > 0, namesTag.size % len == 0 else { throw DataError("\(path): struct field names of \(namesTag.size) bytes at \(len) each") }
            let fields = stride(from: 0, to: namesTag.size, by: len).map { f in
                String(decoding: bytes[(namesTag.start + f)..<(namesTag.start + f + len)].prefix { $0 != 0 }, as: UTF8.self)
            }
            o = namesTag.next
            var elements: [[String: MATValue]] = []
            for _ in 0..<count {
                var element: [String: MATValue] = [:]
                for f in fields {
                    let e = try tag(o, end: end)
                    guard e.type == 14 else { throw DataError("\(path): a struct field of type \(e.type)") }
                    element[f] = try matrix(start: e.start, end: e.start + e.size).1
                    o = e.next
                }
                elements.append(element)
            }
            return (name, .structArray(fields: fields, elements: elements, dims: dims))
        case 4:   // char: UTF-16 (or UTF-8 / bytes) code units, column-major; rows joined by newlines
            if count == 0 { return (name, .char("", dims: dims)) }
            let d = try tag(o, end: end)
            let units: [UInt16]
            switch d.type {
            case 4: units = stride(from: 0, to: d.size - 1, by: 2).map { UInt16(bytes[d.start + $0]) | UInt16(bytes[d.start + $0 + 1]) << 8 }
            case 16:   // UTF-8: one unit per character as MATLAB counts them (BMP characters)
                units = String(decoding: bytes[d.start..<(d.start + d.size)], as: UTF8.self).unicodeScalars.map { UInt16(truncatingIfNeeded: $0.value) }
            case 2, 1: units = bytes[d.start..<(d.start + d.size)].map { UInt16($0) }
            default: throw DataError("\(path): char data of type \(d.type)")
            }
            let rows = dims.first ?? 1
            guard rows > 0, units.count >= count else { throw DataError("\(path): char array \(dims) with \(units.count) characters") }
            let lines = (0..<rows).map { r in String(decoding: stride(from: r, to: count, by: rows).map { units[$0] }, as: UTF16.self) }
            return (name, .char(lines.joined(separator: "\n"), dims: dims))
        case 6...15:
            if count == 0 { return (name, .numeric([], dims: dims)) }
            let d = try tag(o, end: end)
            let v = try numbers(type: d.type, start: d.start, size: d.size)
            guard v.count >= count else { throw DataError("\(path): array \(dims) with \(v.count) values") }
            return (name, .numeric(Array(v.prefix(count)), dims: dims))
        default:
            throw DataError("\(path): MATLAB array class \(cls) is not read here")
        }
    }

    func inflate(_ input: [UInt8]) throws -> [UInt8] {
        var stream = z_stream()
        guard inflateInit_(&stream, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else { throw DataError("zlib failed to start") }
        defer { inflateEnd(&stream) }
        var out: [UInt8] = [], chunk = [UInt8](repeating: 0, count: 1 << 16)
        var input = input
        var result: Int32 = Z_OK
        try input.withUnsafeMutableBufferPointer { inp in
            stream.next_in = inp.baseAddress; stream.avail_in = UInt32(inp.count)
            repeat {
                let produced: Int = chunk.withUnsafeMutableBufferPointer { c in
                    stream.next_out = c.baseAddress; stream.avail_out = UInt32(c.count)
                    result = CZlib.inflate(&stream, Z_NO_FLUSH)
                    return c.count - Int(stream.avail_out)
                }
                out += chunk[0..<produced]
                guard out.count <= 1 << 30 else { throw DataError("\(path): a compressed element inflates past 1 GiB") }
            } while result == Z_OK
        }
        guard result == Z_STREAM_END else { throw DataError("\(path): a compressed element does not inflate (zlib \(result))") }
        return out
    }
}
