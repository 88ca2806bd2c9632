import Foundation
import ProbeTestSupport
import SafeTensors

/// An integer from a golden's metadata.
func metaInt(_ f: SafeTensorsFile, _ key: String) -> Int? { f.metadata[key].flatMap { Int($0) } }
/// A string from a golden's metadata (JSON-quoted strings unquoted).
func metaString(_ f: SafeTensorsFile, _ key: String) -> String? { f.metadata[key]?.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
