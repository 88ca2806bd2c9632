import Foundation

/// The JSON of the files vkprobe leaves in its folders (extract.json, backbone.json, profile.json;
/// summary.json and metrics.jsonl spell their keys themselves): snake_case keys, as upstream's
/// log.txt and summary.json, sorted and indented. Reading takes snake_case and the first files'
/// camelCase alike. Only for types without dictionaries keyed by user names (a head's or
/// class's name must not be re-cased).
public enum RunFileJSON {
    public static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        e.keyEncodingStrategy = .convertToSnakeCase
        return e
    }

    public static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase   // camelCase keys pass unchanged
        return d
    }

    /// A decoding failure in words: what is wrong and where (the key path), without Swift's dump
    /// of the error value.
    public static func describe(_ error: Error) -> String {
        func at(_ path: [CodingKey]) -> String {
            path.isEmpty ? "" : " at " + path.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case DecodingError.dataCorrupted(let c): return c.codingPath.isEmpty ? "not valid JSON" : "an unexpected value\(at(c.codingPath))"
        case DecodingError.keyNotFound(let key, let c): return "\"\(key.stringValue)\" is missing\(at(c.codingPath))"
        case DecodingError.typeMismatch(let type, let c): return "a value of the wrong kind\(at(c.codingPath)) (expected \(type))"
        case DecodingError.valueNotFound(let type, let c): return "a null where a \(type) is needed\(at(c.codingPath))"
        default: return "\(error.localizedDescription)"
        }
    }
}
