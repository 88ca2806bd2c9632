import Foundation

/// Element types of the safetensors format.
public enum SafeTensorsDType: String, Sendable, CaseIterable {
    case F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL
    public var size: Int {
        switch self {
        case .F64, .I64: return 8
        case .F32, .I32: return 4
        case .F16, .BF16, .I16: return 2
        case .I8, .U8, .BOOL: return 1
        }
    }
    public var isFloatingPoint: Bool { [.F64, .F32, .F16, .BF16].contains(self) }
}

public struct SafeTensorsError: Error, CustomStringConvertible {
    public let description: String
    init(_ file: String, _ message: String) { description = "\(file): \(message)" }
}

/// A safetensors file, memory-mapped and validated before anything is read: the header length,
/// the header JSON (strict: integers are integers, no duplicate keys, bounded nesting), every
/// tensor's dtype, shape (non-negative integers whose product and byte size do not overflow) and
/// byte range (inside the payload, matching the shape, not overlapping another). Damaged or
/// hostile files are refused with an error naming the file and the tensor; nothing traps.
public final class SafeTensorsFile {
    public struct Entry: Sendable {
        public let name: String
        public let dtype: SafeTensorsDType
        public let shape: [Int]
        let start: Int, end: Int
        /// Elements (validated not to overflow when the file was opened).
        public let count: Int
    }
    public let path: String
    public let metadata: [String: String]
    public let entries: [String: Entry]
    private let data: Data
    private let base: Int

    /// Largest header accepted (the format's reference implementation uses 100 MB).
    public static let maxHeaderBytes = 100_000_000

    public init(path: String) throws {
        self.path = path
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { throw SafeTensorsError(path, "no such file") }
        guard !isFolder.boolValue else { throw SafeTensorsError(path, "a folder, where a .safetensors file is needed") }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
            // Foundation's description of a read failure is a code ("error 256"); the usual cause is access.
            let readable = FileManager.default.isReadableFile(atPath: path)
            throw SafeTensorsError(path, readable ? "cannot be read (\((error as NSError).localizedFailureReason ?? "an I/O error"))" : "cannot be read: no permission")
        }
        (metadata, entries, base) = try Self.parse(data, path: path)
        self.data = data
    }

    /// Validates an in-memory file (tests, fuzzing).
    public init(data: Data, name: String) throws {
        path = name
        (metadata, entries, base) = try Self.parse(data, path: name)
        self.data = data
    }

    private static func parse(_ data: Data, path: String) throws -> ([String: String], [String: Entry], Int) {
        guard data.count >= 8 else { throw SafeTensorsError(path, "truncated: \(data.count) bytes, not a safetensors file") }
        let raw = data.prefix(8).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard raw >= 2, raw <= UInt64(maxHeaderBytes), raw <= UInt64(data.count - 8) else {
            throw SafeTensorsError(path, "header length \(raw) does not fit a file of \(data.count) bytes (truncated or not safetensors)")
        }
        let headerSize = Int(raw)
        let header = [UInt8](data[data.startIndex + 8 ..< data.startIndex + 8 + headerSize])
        let json: JSONValue
        do { json = try HeaderJSONParser.parse(header) } catch {
            throw SafeTensorsError(path, "header is not valid JSON: \(error)")
        }
        guard case let .object(members) = json else { throw SafeTensorsError(path, "header is \(json.kind), not a JSON object") }
        var meta: [String: String] = [:]
        var entries: [String: Entry] = [:]
        let payload = data.count - 8 - headerSize
        for (name, value) in members {
            if name == "__metadata__" {
                guard case let .object(pairs) = value else { throw SafeTensorsError(path, "__metadata__ is \(value.kind), not an object of strings") }
                for (k, v) in pairs {
                    guard case let .string(s) = v else { throw SafeTensorsError(path, "__metadata__ entry '\(k)' is \(v.kind), not a string") }
                    meta[k] = s
                }
                continue
            }
            entries[name] = try entry(name, value, payload: payload, path: path)
        }
        let sorted = entries.values.filter { $0.end > $0.start }.sorted { $0.start < $1.start }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.end > b.start {
            throw SafeTensorsError(path, "tensors '\(a.name)' and '\(b.name)' overlap")
        }
        return (meta, entries, 8 + headerSize)
    }

    private static func entry(_ name: String, _ value: JSONValue, payload: Int, path: String) throws -> Entry {
        func fail(_ why: String) -> SafeTensorsError { SafeTensorsError(path, "tensor '\(name)': \(why)") }
        guard case let .object(fields) = value else { throw fail("its header entry is \(value.kind), not an object") }
        var dtype: SafeTensorsDType?, shape: [Int]?, offsets: [Int]?
        for (k, v) in fields {
            switch k {
            case "dtype":
                guard case let .string(s) = v else { throw fail("dtype is \(v.kind), not a string") }
                guard let d = SafeTensorsDType(rawValue: s) else {
                    throw fail("unknown dtype \(s) (expected one of \(SafeTensorsDType.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                dtype = d
            case "shape", "data_offsets":
                guard case let .array(items) = v else { throw fail("\(k) is \(v.kind), not an array") }
                let ints = try items.map { item -> Int in
                    guard let n = item.nonNegativeInteger else { throw fail("\(k) holds \(item.kind); expected non-negative integers") }
                    return n
                }
                if k == "shape" { shape = ints } else { offsets = ints }
            default:
                throw fail("unexpected field '\(k)' in its header entry")
            }
        }
        guard let dtype else { throw fail("no dtype") }
        guard let shape else { throw fail("no shape") }
        guard let offsets, offsets.count == 2 else { throw fail("data_offsets must be two integers [start, end]") }
        var count = 1
        for d in shape {
            let (p, o) = count.multipliedReportingOverflow(by: d)
            guard !o else { throw fail("shape \(shape) has more elements than can be addressed") }
            count = p
        }
        let (bytes, o) = count.multipliedReportingOverflow(by: dtype.size)
        guard !o else { throw fail("shape \(shape) of \(dtype.rawValue) needs more bytes than can be addressed") }
        let (start, end) = (offsets[0], offsets[1])
        guard start <= end, end <= payload else {
            throw fail("bytes [\(start), \(end)) outside the \(payload)-byte payload (truncated file?)")
        }
        guard end - start == bytes else { throw fail("holds \(end - start) bytes, shape \(shape) of \(dtype.rawValue) needs \(bytes)") }
        return Entry(name: name, dtype: dtype, shape: shape, start: start, end: end, count: count)
    }

    public var names: [String] { entries.keys.sorted() }

    public func entry(_ name: String) throws -> Entry {
        guard let e = entries[name] else { throw SafeTensorsError(path, "no tensor named '\(name)'") }
        return e
    }

    /// The tensor's values as Float (F32, F16, BF16, F64 and integer types converted).
    public func floats(_ name: String) throws -> [Float] {
        let e = try entry(name)
        return data.withUnsafeBytes { raw in
            let p = raw.baseAddress! + base + e.start
            return (0..<e.count).map { i -> Float in
                switch e.dtype {
                case .F32: return p.loadUnaligned(fromByteOffset: i * 4, as: Float.self)
                case .F16: return Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)))
                case .BF16: return Float(bitPattern: UInt32(p.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)) << 16)
                case .F64: return Float(p.loadUnaligned(fromByteOffset: i * 8, as: Double.self))
                case .I64: return Float(p.loadUnaligned(fromByteOffset: i * 8, as: Int64.self))
                case .I32: return Float(p.loadUnaligned(fromByteOffset: i * 4, as: Int32.self))
                case .I16: return Float(p.loadUnaligned(fromByteOffset: i * 2, as: Int16.self))
                case .I8: return Float(p.loadUnaligned(fromByteOffset: i, as: Int8.self))
                case .U8, .BOOL: return Float(p.loadUnaligned(fromByteOffset: i, as: UInt8.self))
                }
            }
        }
    }

    /// Integer tensors (I64, I32, I16, I8, U8, BOOL) as Int.
    public func ints(_ name: String) throws -> [Int] {
        let e = try entry(name)
        guard !e.dtype.isFloatingPoint else { throw SafeTensorsError(path, "tensor '\(name)' is \(e.dtype.rawValue), integers expected") }
        return data.withUnsafeBytes { raw in
            let p = raw.baseAddress! + base + e.start
            return (0..<e.count).map { i -> Int in
                switch e.dtype {
                case .I64: return Int(p.loadUnaligned(fromByteOffset: i * 8, as: Int64.self))
                case .I32: return Int(p.loadUnaligned(fromByteOffset: i * 4, as: Int32.self))
                case .I16: return Int(p.loadUnaligned(fromByteOffset: i * 2, as: Int16.self))
                case .I8: return Int(p.loadUnaligned(fromByteOffset: i, as: Int8.self))
                default: return Int(p.loadUnaligned(fromByteOffset: i, as: UInt8.self))
                }
            }
        }
    }

    /// Raw bytes of a tensor (for zero-copy uploads).
    public func withBytes<R>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let e = try entry(name)
        return try data.withUnsafeBytes { raw in try body(UnsafeRawBufferPointer(rebasing: raw[(base + e.start)..<(base + e.end)])) }
    }
}

/// Builds a safetensors file and writes it atomically (temporary file, fsync, rename).
public struct SafeTensorsWriter {
    private var tensors: [(name: String, dtype: SafeTensorsDType, shape: [Int], bytes: Data)] = []
    public var metadata: [String: String] = [:]
    /// Called once the complete file is in its temporary place, before the rename (tests kill the
    /// process here to check that an interrupted write leaves the previous file intact).
    public var onTemporaryWritten: (() -> Void)?
    public init() {}

    /// A tensor from raw little-endian bytes of `dtype`.
    public mutating func add(_ name: String, dtype: SafeTensorsDType, shape: [Int], bytes: Data) {
        tensors.append((name, dtype, shape, bytes))
    }
    public mutating func add(_ name: String, _ values: [Float], shape: [Int]) {
        add(name, dtype: .F32, shape: shape, bytes: values.withUnsafeBytes { Data($0) })
    }
    public mutating func add(_ name: String, int64 values: [Int64], shape: [Int]) {
        add(name, dtype: .I64, shape: shape, bytes: values.withUnsafeBytes { Data($0) })
    }
    public mutating func add(_ name: String, int32 values: [Int32], shape: [Int]) {
        add(name, dtype: .I32, shape: shape, bytes: values.withUnsafeBytes { Data($0) })
    }
    public mutating func add(_ name: String, float16 values: [Float], shape: [Int]) {
        let halves = values.map { Float16($0).bitPattern }
        add(name, dtype: .F16, shape: shape, bytes: halves.withUnsafeBytes { Data($0) })
    }
    public mutating func add(_ name: String, uint8 values: [UInt8], shape: [Int]) {
        add(name, dtype: .U8, shape: shape, bytes: Data(values))
    }

    /// Escapes a string as a JSON string literal.
    static func quoted(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }

    public func data() throws -> Data {
        var parts: [String] = []
        if !metadata.isEmpty {
            parts.append("\"__metadata__\":{" + metadata.sorted { $0.key < $1.key }.map { "\(Self.quoted($0.key)):\(Self.quoted($0.value))" }.joined(separator: ",") + "}")
        }
        var offset = 0
        let ordered = tensors.sorted { $0.name < $1.name }
        for t in ordered {
            let count = t.shape.reduce(1, *)
            guard count * t.dtype.size == t.bytes.count else {
                throw SafeTensorsError(t.name, "\(t.bytes.count) bytes given for shape \(t.shape) of \(t.dtype.rawValue)")
            }
            parts.append("\(Self.quoted(t.name)):{\"dtype\":\"\(t.dtype.rawValue)\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + t.bytes.count)]}")
            offset += t.bytes.count
        }
        var json = Data(("{" + parts.joined(separator: ",") + "}").utf8)
        while (json.count + 8) % 8 != 0 { json.append(0x20) }   // pad with spaces so data starts 8-byte aligned
        var out = Data()
        var size = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &size) { out.append(contentsOf: $0) }
        out.append(json)
        for t in ordered { out.append(t.bytes) }
        return out
    }

    /// Writes to `path` atomically: readers see the old file or the complete new one, never a
    /// part, even if the process is killed mid-write (the temporary file is flushed to disk before
    /// it replaces the old one).
    public func write(to path: String) throws {
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let bytes = try data()
        let temporary = path + ".tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: temporary, contents: nil) else {
            throw SafeTensorsError(path, "cannot create \(temporary)")
        }
        do {
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: temporary))
            try handle.write(contentsOf: bytes)
            try handle.synchronize()
            try handle.close()
            onTemporaryWritten?()
            guard rename(temporary, path) == 0 else { throw SafeTensorsError(path, "cannot replace it: \(String(cString: strerror(errno)))") }
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
    }
}
