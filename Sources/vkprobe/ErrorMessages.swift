import ArgumentParser
import Foundation

/// What the user reads for an error: one or two sentences. Foundation's errors (a missing folder,
/// an existing file, a network failure) arrive as `Error Domain=… Code=… "…" UserInfo={…}` dumps,
/// on their own or inside our messages; each becomes its description and the path or URL it names.
enum ErrorMessages {
    static func text(_ error: Error) -> String {
        // A command line vkprobe built for itself (linprobe's translation) that its parser refused:
        // the parser's own sentence, not the error value.
        if "\(type(of: error))" == "CommandError" || error is ValidationError { return VKProbe.message(for: error) }
        let ns = error as NSError
        if ns.domain == NSCocoaErrorDomain || ns.domain == NSURLErrorDomain || ns.domain == NSPOSIXErrorDomain {
            return foundation(ns)
        }
        return cleaned("\(error)")
    }

    /// A Foundation error as a sentence naming what it concerns.
    static func foundation(_ e: NSError) -> String {
        let path = (e.userInfo[NSFilePathErrorKey] as? String) ?? (e.userInfo[NSURLErrorKey] as? URL)?.path
            ?? (e.userInfo[NSURLErrorFailingURLStringErrorKey] as? String)
        var what: String
        switch (e.domain, e.code) {
        case (NSCocoaErrorDomain, NSFileNoSuchFileError), (NSCocoaErrorDomain, NSFileReadNoSuchFileError):
            what = "no such file or folder (check the path; a destination's folder must exist)"
        case (NSCocoaErrorDomain, NSFileWriteFileExistsError):
            what = "already exists (a file where a folder is needed, or the other way round?)"
        case (NSCocoaErrorDomain, NSFileWriteNoPermissionError), (NSCocoaErrorDomain, NSFileReadNoPermissionError):
            what = "permission denied"
        case (NSCocoaErrorDomain, NSFileWriteOutOfSpaceError):
            what = "no space left on the device"
        default:
            what = e.localizedDescription
        }
        return path.map { "\($0): \(what)" } ?? what
    }

    /// `text` with every embedded `Error Domain=… Code=N "description" UserInfo={…}` replaced by
    /// its description, and `Optional(x)` by x.
    static func cleaned(_ text: String) -> String {
        var s = Substring(text), out = ""
        while let r = s.range(of: "Error Domain=") {
            out += s[..<r.lowerBound]
            var rest = s[r.upperBound...]
            // The quoted description after `Code=N `, if any.
            var description = ""
            if let q = rest.firstIndex(of: "\""), rest[..<q].contains("Code="), !rest[..<q].contains("\n") {
                let after = rest[rest.index(after: q)...]
                if let end = after.firstIndex(of: "\"") { description = String(after[..<end]); rest = after[after.index(after: end)...] }
            }
            // Skip a `UserInfo={…}` (braces nest: underlying errors), keeping its localized
            // description for an error whose own is "(null)" (libcurl's failures).
            let trimmed = rest.drop { $0 == " " }
            if trimmed.hasPrefix("UserInfo={") {
                var depth = 0, i = trimmed.firstIndex(of: "{")!
                repeat {
                    if trimmed[i] == "{" { depth += 1 } else if trimmed[i] == "}" { depth -= 1 }
                    i = trimmed.index(after: i)
                } while depth > 0 && i < trimmed.endIndex
                let info = trimmed[..<i]
                if description.isEmpty || description == "(null)", let d = info.range(of: "NSLocalizedDescription=") {
                    let value = info[d.upperBound...]
                    let end = [value.range(of: ", NS")?.lowerBound, value.firstIndex(of: "}")].compactMap { $0 }.min() ?? value.endIndex
                    description = String(value[..<end])
                }
                rest = trimmed[i...]
            }
            out += description.isEmpty || description == "(null)" ? "a system error" : description
            s = rest
        }
        out += s
        return out.replacingOccurrences(of: #"Optional\(([^()]*)\)"#, with: "$1", options: .regularExpression)
    }
}

/// Destinations checked before any work: a folder that is a file, or a file whose path is a folder,
/// is refused naming the flag; a file's folder is created.
enum Destination {
    static func folder(_ path: String, flag: String = "--output") throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue {
            throw DestinationError("\(flag) \(path): a file is there; \(flag) names a folder (a new one, or one of this command's)")
        }
    }

    static func file(_ path: String, flag: String = "--output") throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
            throw DestinationError("\(flag) \(path): a folder is there; \(flag) names a file (e.g. \(path)/result.json)")
        }
        let parent = URL(fileURLWithPath: path).deletingLastPathComponent()
        do { try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true) } catch {
            throw DestinationError("\(flag) \(path): its folder \(parent.path) cannot be made (\(ErrorMessages.text(error)))")
        }
    }
}

struct DestinationError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
