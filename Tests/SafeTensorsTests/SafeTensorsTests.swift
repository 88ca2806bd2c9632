import Foundation
import ProbeTestBasics
import Testing
@testable import SafeTensors

/// A file from a header string and a payload, with the length prefix `length` (default: the
/// header's).
func safetensorsBytes(_ header: String, payload: Data = Data(), length: UInt64? = nil) -> Data {
    var out = Data()
    var n = (length ?? UInt64(header.utf8.count)).littleEndian
    withUnsafeBytes(of: &n) { out.append(contentsOf: $0) }
    out.append(Data(header.utf8))
    out.append(payload)
    return out
}

@Suite struct SafeTensorsTests {
    /// The reader refuses each of these with an error naming the problem — none traps.
    @Test(arguments: [
        ("top-bit header length", safetensorsBytes("{}", length: 1 << 63), "header length"),
        ("header longer than the file", safetensorsBytes("{}", length: 1000), "header length"),
        ("not JSON", safetensorsBytes("{\"a\": [1, 2,}"), "not valid JSON"),
        ("not an object", safetensorsBytes("[1, 2]"), "not a JSON object"),
        ("negative dimension", safetensorsBytes(#"{"t": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}}"#), "non-negative integers"),
        ("fractional dimension", safetensorsBytes(#"{"t": {"dtype": "F32", "shape": [2.5], "data_offsets": [0, 0]}}"#), "non-negative integers"),
        ("boolean dimension", safetensorsBytes(#"{"t": {"dtype": "F32", "shape": [true], "data_offsets": [0, 4]}}"#), "non-negative integers"),
        ("string dimension", safetensorsBytes(#"{"t": {"dtype": "F32", "shape": ["3"], "data_offsets": [0, 12]}}"#), "non-negative integers"),
        ("exponent dimension", safetensorsBytes(#"{"t": {"dtype": "F32", "shape": [1e2], "data_offsets": [0, 400]}}"#), "non-negative integers"),
        ("shape product overflow", safetensorsBytes(#"{"t": {"dtype": "F32", "shape": [4294967296, 4294967296, 4], "data_offsets": [0, 0]}}"#), "more elements"),
        ("byte count overflow", safetensorsBytes(#"{"t": {"dtype": "F64", "shape": [2305843009213693952], "data_offsets": [0, 0]}}"#), "more bytes"),
        ("huge dimension", safetensorsBytes(#"{"t": {"dtype": "F32", "shape": [99999999999999999999999], "data_offsets": [0, 0]}}"#), "non-negative integers"),
        ("offsets beyond the payload", safetensorsBytes(#"{"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}"#, payload: Data(count: 4)), "outside"),
        ("reversed offsets", safetensorsBytes(#"{"t": {"dtype": "F32", "shape": [0], "data_offsets": [4, 0]}}"#, payload: Data(count: 4)), "outside"),
        ("size mismatch", safetensorsBytes(#"{"t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 8]}}"#, payload: Data(count: 8)), "needs 4"),
        ("overlap", safetensorsBytes(#"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}"#, payload: Data(count: 12)), "overlap"),
        ("unknown dtype", safetensorsBytes(#"{"t": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}}"#, payload: Data(count: 16)), "unknown dtype"),
        ("duplicate key", safetensorsBytes(#"{"t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}"#, payload: Data(count: 4)), "duplicate key"),
        ("deep nesting", safetensorsBytes(String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)), "nesting deeper"),
        ("non-string metadata", safetensorsBytes(#"{"__metadata__": {"a": 1}}"#), "not a string"),
        ("missing offsets", safetensorsBytes(#"{"t": {"dtype": "F32", "shape": [1]}}"#), "data_offsets"),
        ("bad escape", safetensorsBytes(#"{"t\q": 1}"#), "unknown escape"),
        ("lone surrogate", safetensorsBytes(#"{"\ud800": 1}"#), "surrogate"),
        ("truncated", Data([1, 2, 3]), "truncated"),
    ] as [(String, Data, String)])
    func hostileFilesAreRefusedClearly(_ what: String, _ bytes: Data, _ message: String) {
        do {
            _ = try SafeTensorsFile(data: bytes, name: "hostile.safetensors")
            Issue.record("\(what): accepted")
        } catch {
            #expect("\(error)".contains("hostile.safetensors") && "\(error)".contains(message), "\(what): \(error)")
        }
    }

    /// Every dtype written and read back; integer and float conversions exact where representable.
    @Test func writerRoundTripsEveryDType() throws {
        var w = SafeTensorsWriter()
        w.metadata = ["note": "quotes \" and \\ and\nnewlines, ünïcödé", "head": "ep"]
        let f: [Float] = [0, 1, -2.5, 3.25, 1e-3, -65504]
        w.add("f32", f, shape: [2, 3])
        w.add("f16", float16: f, shape: [6])
        w.add("bf16", dtype: .BF16, shape: [6], bytes: f.map { UInt16($0.bitPattern >> 16) }.withUnsafeBytes { Data($0) })
        w.add("f64", dtype: .F64, shape: [6], bytes: f.map(Double.init).withUnsafeBytes { Data($0) })
        let ints = [0, 1, -2, 127, -128, 5]
        w.add("i64", int64: ints.map(Int64.init), shape: [6])
        w.add("i32", int32: ints.map(Int32.init), shape: [3, 2])
        w.add("i16", dtype: .I16, shape: [6], bytes: ints.map(Int16.init).withUnsafeBytes { Data($0) })
        w.add("i8", dtype: .I8, shape: [6], bytes: ints.map(Int8.init).withUnsafeBytes { Data($0) })
        w.add("u8", uint8: [0, 1, 2, 127, 128, 255], shape: [6])
        w.add("bool", dtype: .BOOL, shape: [6], bytes: Data([0, 1, 1, 0, 0, 1]))
        w.add("empty", [], shape: [0, 4])
        w.add("scalar", int64: [42], shape: [])
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("all.safetensors").path
        try w.write(to: path)
        let r = try SafeTensorsFile(path: path)
        #expect(r.metadata == w.metadata)
        #expect(r.names == ["bf16", "bool", "empty", "f16", "f32", "f64", "i16", "i32", "i64", "i8", "scalar", "u8"])
        #expect(try r.floats("f32") == f)
        #expect(try r.floats("f16") == f.map { Float(Float16($0)) })
        #expect(try r.floats("bf16") == f.map { Float(bitPattern: $0.bitPattern & 0xFFFF_0000) })
        #expect(try r.floats("f64") == f)
        for k in ["i64", "i32", "i16", "i8"] { #expect(try r.ints(k) == ints, "\(k)") }
        #expect(try r.ints("u8") == [0, 1, 2, 127, 128, 255])
        #expect(try r.ints("bool") == [0, 1, 1, 0, 0, 1])
        #expect(try r.entry("i32").shape == [3, 2])
        #expect(try r.floats("empty").isEmpty && r.entry("empty").shape == [0, 4])
        #expect(try r.ints("scalar") == [42] && r.entry("scalar").shape == [])
        #expect(throws: SafeTensorsError.self) { try r.ints("f32") }
        // The temporary file of the atomic write is gone.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["all.safetensors"])
    }

    /// Thousands of random and mutated files, seeded: the reader returns or throws, never traps,
    /// and what it accepts it can read entirely. `SAFETENSORS_FUZZ_ITERATIONS` runs it longer
    /// (Bench/fuzz_safetensors.sh).
    @Test func fuzzedFilesNeverCrashTheReader() throws {
        let iterations = ProcessInfo.processInfo.environment["SAFETENSORS_FUZZ_ITERATIONS"].flatMap(Int.init) ?? 20000
        var rng = FuzzRNG(state: UInt64(ProcessInfo.processInfo.environment["SAFETENSORS_FUZZ_SEED"].flatMap(Int.init) ?? 1))
        // A valid file to mutate.
        var w = SafeTensorsWriter()
        w.metadata = ["head": "ep", "dim": "4"]
        w.add("tokens", [Float](repeating: 0.5, count: 24), shape: [2, 3, 4])
        w.add("labels", int64: [3, 1], shape: [2])
        w.add("half", float16: [1, 2, 3], shape: [3])
        let valid = try w.data()
        let fragments = ["{", "}", "[", "]", ",", ":", "\"", "\\", "\"dtype\"", "\"shape\"", "\"data_offsets\"", "\"F32\"", "\"I64\"", "\"BOOL\"",
                         "-1", "0", "1e9", "2.5", "18446744073709551616", "9223372036854775807", "true", "null", "\"__metadata__\"", "\\u00e9", "\\ud83d\\ude00", " "]
        var accepted = 0
        for i in 0..<iterations {
            var bytes: Data
            switch i % 4 {
            case 0:   // flip, insert or delete bytes of the valid file
                bytes = valid
                for _ in 0...rng.below(8) {
                    let at = rng.below(bytes.count)
                    switch rng.below(3) {
                    case 0: bytes[at] = UInt8(truncatingIfNeeded: rng.next())
                    case 1: bytes.insert(UInt8(truncatingIfNeeded: rng.next()), at: at)
                    default: if bytes.count > 1 { bytes.remove(at: at) }
                    }
                }
            case 1:   // splice JSON fragments into the header, keeping the length prefix consistent
                let headerLength = Int(valid.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
                var header = String(decoding: valid[8..<(8 + headerLength)], as: UTF8.self)
                for _ in 0...rng.below(4) {
                    let chars = Array(header)
                    let at = rng.below(chars.count + 1)
                    header = String(chars[..<at]) + rng.pick(fragments) + String(chars[at...])
                }
                bytes = safetensorsBytes(header, payload: valid.suffix(from: 8 + headerLength))
            case 2:   // a random header of random entries
                var entries: [String] = []
                for e in 0..<rng.below(4) {
                    let shape = (0..<rng.below(4)).map { _ in rng.pick(["0", "1", "3", "-2", "1.5", "true", "4294967296", "\"x\""]) }
                    entries.append("\"t\(e)\":{\"dtype\":\(rng.pick(["\"F32\"", "\"F16\"", "\"I64\"", "\"U8\"", "\"XX\"", "3"])),\"shape\":[\(shape.joined(separator: ","))],\"data_offsets\":[\(rng.below(40)),\(rng.below(80))]}")
                }
                bytes = safetensorsBytes("{" + entries.joined(separator: ",") + "}", payload: Data(count: rng.below(100)))
            default:  // random bytes with a plausible or hostile length prefix
                let n = rng.below(64)
                let header = Data((0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
                var out = Data()
                var len = rng.pick([UInt64(n), rng.next(), UInt64.max, 0, 1 << 63]).littleEndian
                withUnsafeBytes(of: &len) { out.append(contentsOf: $0) }
                out.append(header)
                bytes = out
            }
            if let file = try? SafeTensorsFile(data: bytes, name: "fuzz") {
                accepted += 1
                for name in file.names {
                    let e = try file.entry(name)
                    let values = try file.floats(name)
                    #expect(values.count == e.count)
                    if !e.dtype.isFloatingPoint { #expect(try file.ints(name).count == e.count) }
                }
            }
        }
        #expect(accepted > 0, "the fuzzer never produced a valid file: its mutations are too coarse to exercise acceptance")
    }
}
