import Foundation

/// Element types of the safetensors format.
public enum SafeTensorsDType: String, Sendable {
    case F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL
    public var size: Int {
        switch self {
        case .F64, .I64: return 8
        case .F32, .I32: return 4
        case .F16, .BF16, .I16: return 2
        case .I8, .U8, .BOOL: return 1
        }
    }
}

public struct SafeTensorsError: Error, CustomStringConvertible {
    public let description: String
    init(_ file: String, _ message: String) { description = "\(file): \(message)" }
}

/// A safetensors file, memory-mapped and validated: header JSON, dtypes, shapes and byte ranges
/// (in bounds, matching the shape, non-overlapping).
public final class SafeTensorsFile {
    public struct Entry: Sendable {
        public let name: String
        public let dtype: SafeTensorsDType
        public let shape: [Int]
        let start: Int, end: Int
        public var count: Int { shape.reduce(1, *) }
    }
    public let path: String
    public let metadata: [String: String]
    public let entries: [String: Entry]
    private let data: Data
    private let base: Int

    public init(path: String) throws {
        self.path = path
        guard FileManager.default.fileExists(atPath: path) else { throw SafeTensorsError(path, "no such file") }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
            throw SafeTensorsError(path, "cannot read: \(error.localizedDescription)")
        }
        guard data.count >= 8 else { throw SafeTensorsError(path, "truncated: \(data.count) bytes, not a safetensors file") }
        let headerSize = data.prefix(8).withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        guard headerSize > 1, headerSize <= 100 << 20, 8 + headerSize <= data.count else {
            throw SafeTensorsError(path, "header size \(headerSize) does not fit a file of \(data.count) bytes (truncated or not safetensors)")
        }
        let headerData = data.subdata(in: 8..<(8 + headerSize))
        guard let json = try? JSONSerialization.jsonObject(with: headerData) as? [String: Any] else {
            throw SafeTensorsError(path, "header is not a JSON object")
        }
        var meta: [String: String] = [:]
        var entries: [String: Entry] = [:]
        let payload = data.count - 8 - headerSize
        for (name, value) in json {
            if name == "__metadata__" {
                for (k, v) in (value as? [String: Any]) ?? [:] { meta[k] = v as? String ?? "\(v)" }
                continue
            }
            guard let info = value as? [String: Any], let dt = info["dtype"] as? String, let dtype = SafeTensorsDType(rawValue: dt),
                  let shape = (info["shape"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }),
                  let offsets = (info["data_offsets"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }), offsets.count == 2 else {
                throw SafeTensorsError(path, "tensor '\(name)' has a malformed header entry")
            }
            let e = Entry(name: name, dtype: dtype, shape: shape, start: offsets[0], end: offsets[1])
            guard e.start >= 0, e.end >= e.start, e.end <= payload else {
                throw SafeTensorsError(path, "tensor '\(name)' bytes [\(e.start), \(e.end)) outside the \(payload)-byte payload (truncated file?)")
            }
            guard e.end - e.start == e.count * dtype.size else {
                throw SafeTensorsError(path, "tensor '\(name)' holds \(e.end - e.start) bytes, shape \(shape) of \(dt) needs \(e.count * dtype.size)")
            }
            entries[name] = e
        }
        let sorted = entries.values.sorted { $0.start < $1.start }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.end > b.start {
            throw SafeTensorsError(path, "tensors '\(a.name)' and '\(b.name)' overlap")
        }
        self.metadata = meta
        self.entries = entries
        self.data = data
        self.base = 8 + headerSize
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

    /// Integer tensors (I64, I32, I16, I8, U8) as Int.
    public func ints(_ name: String) throws -> [Int] {
        let e = try entry(name)
        switch e.dtype {
        case .F32, .F16, .BF16, .F64: throw SafeTensorsError(path, "tensor '\(name)' is \(e.dtype.rawValue), integers expected")
        default: break
        }
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

/// Builds a safetensors file and writes it atomically (temporary file, then rename).
public struct SafeTensorsWriter {
    private var tensors: [(name: String, dtype: SafeTensorsDType, shape: [Int], bytes: Data)] = []
    public var metadata: [String: String] = [:]
    public init() {}

    public mutating func add(_ name: String, _ values: [Float], shape: [Int]) {
        tensors.append((name, .F32, shape, values.withUnsafeBytes { Data($0) }))
    }
    public mutating func add(_ name: String, int64 values: [Int64], shape: [Int]) {
        tensors.append((name, .I64, shape, values.withUnsafeBytes { Data($0) }))
    }
    public mutating func add(_ name: String, int32 values: [Int32], shape: [Int]) {
        tensors.append((name, .I32, shape, values.withUnsafeBytes { Data($0) }))
    }
    public mutating func add(_ name: String, float16 values: [Float], shape: [Int]) {
        let halves = values.map { Float16($0).bitPattern }
        tensors.append((name, .F16, shape, halves.withUnsafeBytes { Data($0) }))
    }

    public func data() throws -> Data {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        for t in tensors.sorted(by: { $0.name < $1.name }) {
            header[t.name] = ["dtype": t.dtype.rawValue, "shape": t.shape, "data_offsets": [offset, offset + t.bytes.count]] as [String: Any]
            offset += t.bytes.count
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while (json.count + 8) % 8 != 0 { json.append(0x20) }   // pad with spaces so data starts 8-byte aligned
        var out = Data()
        var size = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &size) { out.append(contentsOf: $0) }
        out.append(json)
        for t in tensors.sorted(by: { $0.name < $1.name }) { out.append(t.bytes) }
        return out
    }

    /// Writes to `path` atomically: readers see the old file or the complete new one, never a part.
    public func write(to path: String) throws {
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data().write(to: url, options: .atomic)
    }
}
