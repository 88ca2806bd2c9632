import Foundation
import Logging

extension Logger {
    /// Says nothing (a test that is not about the log).
    static let silent = Logger(label: "test.silent", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Keeps every message (a test that reads what a run said).
    static func capturing(_ lines: MessageBox) -> Logger {
        var l = Logger(label: "test.capture", factory: { _ in CapturingHandler(box: lines) })
        l.logLevel = .trace
        return l
    }
}

final class MessageBox: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String] = []
    var lines: [String] { lock.withLock { stored } }
    func append(_ s: String) { lock.withLock { stored.append(s) } }
}

struct CapturingHandler: LogHandler {
    let box: MessageBox
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) { box.append("\(event.message)") }
}
