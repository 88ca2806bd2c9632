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
}
