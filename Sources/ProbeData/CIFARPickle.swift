import Foundation

/// A reader of the pickles in torchvision's CIFAR archives (`cifar-10-batches-py/data_batch_1`,
/// `cifar-100-python/train`): a dict of `data` (a NumPy uint8 array, N × 3072, channel-planar) and
/// `labels` / `fine_labels` (lists of ints). A small pickle machine that runs only the opcodes
/// these files use (protocols 2–4 as Python 2's cPickle and Python 3's pickle write them) and
/// builds no object other than strings, bytes, numbers, lists, tuples, dicts and NumPy arrays of
/// bytes: `GLOBAL` is honoured only for NumPy's array reconstruction and `_codecs.encode`, and any
/// other callable is refused — a pickle here is data, never code.
enum CIFARPickle {
    indirect enum Value {
        case none, bool(Bool), int(Int), float(Double), string(String), bytes([UInt8])
        case list([Value]), tuple([Value]), dict([(Value, Value)])
        case global(String)
        case array(shape: [Int], data: [UInt8])
        case mark

        var key: String? {
            switch self {
            case let .string(s): return s
            case let .bytes(b): return String(decoding: b, as: UTF8.self)
            default: return nil
            }
        }
    }

    /// `data` (N × 3072 bytes) and the labels under `labelKey` of one batch file.
    static func batch(_ url: URL, labelKey: String) throws -> (data: [UInt8], labels: [Int]) {
        guard let bytes = FileManager.default.contents(atPath: url.path) else { throw DataError("\(url.path): missing (torchvision's Python version of CIFAR)") }
        guard case let .dict(items) = try load([UInt8](bytes), url.path) else { throw DataError("\(url.path): not a dict") }
        var data: [UInt8]?, labels: [Int]?
        for (k, v) in items {
            if k.key == "data", case let .array(shape, d) = v {
                guard shape.count == 2, shape[1] == 3072, d.count == shape[0] * 3072 else { throw DataError("\(url.path): data of shape \(shape)") }
                data = d
            }
            if k.key == labelKey, case let .list(l) = v {
                labels = try l.map { if case let .int(i) = $0 { return i }; throw DataError("\(url.path): a label that is not an integer") }
            }
        }
        guard let data, let labels, labels.count * 3072 == data.count else {
            throw DataError("\(url.path): no `data` and `\(labelKey)` of matching sizes")
        }
        return (data, labels)
    }

    /// The label names of `meta` / `batches.meta` (`fine_label_names` / `label_names`).
    static func names(_ url: URL, key: String) throws -> [String]? {
        guard let bytes = FileManager.default.contents(atPath: url.path), case let .dict(items) = try load([UInt8](bytes), url.path) else { return nil }
        for (k, v) in items where k.key == key { if case let .list(l) = v { return l.compactMap(\.key) } }
        return nil
    }

    static func load(_ b: [UInt8], _ path: String) throws -> Value {
        var stack: [Value] = [], memo: [Int: Value] = [:]
        var i = 0
        func need(_ n: Int) throws { guard n >= 0, n <= b.count - i else { throw DataError("\(path): the pickle ends early") } }
        func u8() throws -> Int { try need(1); defer { i += 1 }; return Int(b[i]) }
        func le(_ n: Int) throws -> Int {
            try need(n)
            var v = 0
            for k in 0..<n { v |= Int(b[i + k]) << (8 * k) }
            i += n
            return v
        }
        func take(_ n: Int) throws -> [UInt8] { try need(n); defer { i += n }; return Array(b[i..<(i + n)]) }
        func line() throws -> String {
            guard let nl = b[i...].firstIndex(of: 0x0A) else { throw DataError("\(path): an unterminated line in the pickle") }
            defer { i = nl + 1 }
            return String(decoding: b[i..<nl], as: UTF8.self)
        }
        func pop() throws -> Value { guard let v = stack.popLast() else { throw DataError("\(path): the pickle's stack underflows") }; return v }
        func popMark() throws -> [Value] {
            guard let m = stack.lastIndex(where: { if case .mark = $0 { return true }; return false }) else { throw DataError("\(path): no mark in the pickle") }
            let items = Array(stack[(m + 1)...])
            stack.removeSubrange(m...)
            return items
        }
        while true {
            let op = try u8()
            switch op {
            case 0x80: _ = try u8()                                   // PROTO
            case 0x95: _ = try le(8)                                  // FRAME
            case 0x2E: return try pop()                               // STOP
            case 0x7D: stack.append(.dict([]))                        // EMPTY_DICT
            case 0x5D: stack.append(.list([]))                        // EMPTY_LIST
            case 0x29: stack.append(.tuple([]))                       // EMPTY_TUPLE
            case 0x28: stack.append(.mark)                            // MARK
            case 0x4E: stack.append(.none)                            // NONE
            case 0x88: stack.append(.bool(true))                      // NEWTRUE
            case 0x89: stack.append(.bool(false))                     // NEWFALSE
            case 0x4B: stack.append(.int(try u8()))                   // BININT1
            case 0x4D: stack.append(.int(try le(2)))                  // BININT2
            case 0x4A: stack.append(.int(Int(Int32(truncatingIfNeeded: try le(4)))))   // BININT
            case 0x8A:                                                // LONG1
                let n = try u8()
                guard n <= 8 else { throw DataError("\(path): an integer of \(n) bytes") }
                let raw = try take(n)
                var v: Int64 = 0
                for (k, x) in raw.enumerated() { v |= Int64(x) << (8 * Int64(k)) }
                if n > 0 && n < 8 && raw[n - 1] & 0x80 != 0 { v -= Int64(1) << (8 * Int64(n)) }
                stack.append(.int(Int(v)))
            case 0x47: stack.append(.float(Double(bitPattern: UInt64(bigEndian: try take(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }))))   // BINFLOAT
            case 0x55: stack.append(.bytes(try take(try u8())))       // SHORT_BINSTRING (Python 2 str)
            case 0x54: stack.append(.bytes(try take(try le(4))))      // BINSTRING
            case 0x43: stack.append(.bytes(try take(try u8())))       // SHORT_BINBYTES
            case 0x42: stack.append(.bytes(try take(try le(4))))      // BINBYTES
            case 0x8E: stack.append(.bytes(try take(try le(8))))      // BINBYTES8
            case 0x8C: stack.append(.string(String(decoding: try take(try u8()), as: UTF8.self)))   // SHORT_BINUNICODE
            case 0x58: stack.append(.string(String(decoding: try take(try le(4)), as: UTF8.self)))  // BINUNICODE
            case 0x71: memo[try u8()] = stack.last                    // BINPUT
            case 0x72: memo[try le(4)] = stack.last                   // LONG_BINPUT
            case 0x94: memo[memo.count] = stack.last                  // MEMOIZE
            case 0x68: guard let v = memo[try u8()] else { throw DataError("\(path): an unknown memo entry") }; stack.append(v)    // BINGET
            case 0x6A: guard let v = memo[try le(4)] else { throw DataError("\(path): an unknown memo entry") }; stack.append(v)  // LONG_BINGET
            case 0x85: stack.append(.tuple([try pop()]))              // TUPLE1
            case 0x86: let b2 = try pop(), a = try pop(); stack.append(.tuple([a, b2]))   // TUPLE2
            case 0x87: let c = try pop(), b2 = try pop(), a = try pop(); stack.append(.tuple([a, b2, c]))   // TUPLE3
            case 0x74: stack.append(.tuple(try popMark()))            // TUPLE
            case 0x61:                                                // APPEND
                let v = try pop()
                guard case let .list(l) = try pop() else { throw DataError("\(path): APPEND to a non-list") }
                stack.append(.list(l + [v]))
            case 0x65:                                                // APPENDS
                let items = try popMark()
                guard case let .list(l) = try pop() else { throw DataError("\(path): APPENDS to a non-list") }
                stack.append(.list(l + items))
            case 0x73:                                                // SETITEM
                let v = try pop(), k = try pop()
                guard case let .dict(d) = try pop() else { throw DataError("\(path): SETITEM on a non-dict") }
                stack.append(.dict(d + [(k, v)]))
            case 0x75:                                                // SETITEMS
                let items = try popMark()
                guard items.count % 2 == 0, case let .dict(d) = try pop() else { throw DataError("\(path): SETITEMS on a non-dict") }
                stack.append(.dict(d + stride(from: 0, to: items.count, by: 2).map { (items[$0], items[$0 + 1]) }))
            case 0x63: stack.append(.global(try line() + "." + line()))   // GLOBAL
            case 0x93:                                                // STACK_GLOBAL
                let name = try pop(), module = try pop()
                stack.append(.global((module.key ?? "") + "." + (name.key ?? "")))
            case 0x52:                                                // REDUCE
                let args = try pop(), f = try pop()
                guard case let .global(name) = f, case let .tuple(a) = args else { throw DataError("\(path): a call in the pickle") }
                switch name {
                case "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct": stack.append(.array(shape: [], data: []))
                case "numpy.dtype": stack.append(.global("dtype:" + (a.first?.key ?? "")))
                case "_codecs.encode":
                    // Python 3 pickling bytes at protocol 2: encode(str, 'latin1').
                    guard case let .string(s)? = a.first else { throw DataError("\(path): _codecs.encode of a non-string") }
                    stack.append(.bytes(s.unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) }))
                default: throw DataError("\(path): the pickle calls \(name), which is refused (only NumPy arrays are rebuilt)")
                }
            case 0x62:                                                // BUILD
                let state = try pop(), obj = try pop()
                switch obj {
                case .array:
                    // ndarray.__setstate__((version, shape, dtype, fortran, data)): uint8 only.
                    guard case let .tuple(t) = state, t.count == 5, case let .tuple(shape) = t[1], case let .global(dtype) = t[2],
                          case let .bytes(data) = t[4] else { throw DataError("\(path): an array state the reader does not know") }
                    guard dtype == "dtype:u1" || dtype == "dtype:|u1" else { throw DataError("\(path): an array of \(dtype), uint8 expected") }
                    if case .bool(true) = t[3] { throw DataError("\(path): a Fortran-ordered array") }
                    let dims = try shape.map { if case let .int(n) = $0, n >= 0 { return n }; throw DataError("\(path): an array dimension") }
                    stack.append(.array(shape: dims, data: data))
                default:
                    stack.append(obj)   // a dtype's state (byte order, flags): nothing to keep
                }
            default:
                throw DataError("\(path): pickle opcode 0x\(String(op, radix: 16)) at byte \(i - 1) is not one a CIFAR batch uses")
            }
        }
    }
}
