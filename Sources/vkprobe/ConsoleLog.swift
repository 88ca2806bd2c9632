import ArgumentParser
import Foundation
import Logging

/// The one console handler: every library logs through swift-log; the command line decides where
/// it goes. Informational lines go to stdout as plain lines (as before: the progress a run
/// prints); warnings, errors and notes to stderr; `--log-level debug` adds the device layer's
/// decisions (kernel selection, splits, cache paths), `trace` more detail still.
enum ConsoleLog {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var _level: Logger.Level = .info

    /// The level every logger obeys (a logger may raise its own: the non-lead ranks of a group).
    static var level: Logger.Level {
        get { lock.withLock { _level } }
        set { lock.withLock { _level = newValue } }
    }

    /// Installed once, before any command runs.
    static func bootstrap() {
        LoggingSystem.bootstrap { ConsoleLogHandler(label: $0) }
    }

    /// A logger for a command's own progress lines (rank-tagged under mpirun).
    static func logger(_ label: String = "vkprobe", rank: Int = 0, ranks: Int = 1) -> Logger {
        var l = Logger(label: label)
        if ranks > 1 { l[metadataKey: "rank"] = "\(rank)/\(ranks)" }
        return l
    }

    /// Whether stdout is a terminal: a line there first clears a progress line drawn with "\r".
    static let stdoutIsTerminal = isatty(STDOUT_FILENO) != 0
    /// Writes are whole lines under one lock, so lines of threads never interleave; stdout through
    /// stdio and flushed, in order with the commands' own `print`.
    static func write(_ text: String, toStandardError: Bool) {
        lock.withLock {
            fflush(stdout)
            fputs(text, toStandardError ? stderr : stdout)
            fflush(toStandardError ? stderr : stdout)
        }
    }
}

struct ConsoleLogHandler: LogHandler {
    let label: String
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    /// This logger's own floor (nil: the command's level alone).
    private var floor: Logger.Level?

    init(label: String) { self.label = label }

    var logLevel: Logger.Level {
        get { max(ConsoleLog.level, floor ?? .trace) }
        set { floor = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let rank = metadata["rank"].map { "[rank \($0)] " } ?? ""
        let text = "\(event.message)"
        switch event.level {
        case .trace, .debug:
            ConsoleLog.write("\(event.level): \(rank)[\(label)] \(text)\n", toStandardError: true)
        case .info:
            ConsoleLog.write((ConsoleLog.stdoutIsTerminal ? "\r\u{1B}[K" : "") + rank + text + "\n", toStandardError: false)
        case .notice:
            ConsoleLog.write(rank + text + "\n", toStandardError: true)
        case .warning:
            ConsoleLog.write("warning: \(rank)\(text)\n", toStandardError: true)
        case .error, .critical:
            ConsoleLog.write("error: \(rank)\(text)\n", toStandardError: true)
        }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// `--log-level` and `--quiet`, on every subcommand.
struct LoggingOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("How much to say: trace, debug (the device layer's decisions: kernel selection, splits, cache paths), info (the default: progress), notice, warning, error.", valueName: "level"))
    var logLevel: Logger.Level?

    @Flag(name: .long, help: "Only warnings and errors (same as --log-level warning); results and machine-readable output are printed as always.")
    var quiet = false

    mutating func validate() throws {
        if quiet, let l = logLevel, l != .warning { throw ValidationError("--quiet means --log-level warning; give one of them") }
        // Only when given: a command parsed inside another (linprobe runs train) keeps the outer level.
        if let l = logLevel { ConsoleLog.level = l } else if quiet { ConsoleLog.level = .warning }
    }

    /// `--log-level X`, `--log-level=X` and `--quiet` taken out of passed-through arguments (linprobe's)
    /// and applied; the rest returned.
    static func take(from arguments: [String]) throws -> [String] {
        var rest: [String] = [], i = 0, options: [String] = []
        while i < arguments.count {
            let a = arguments[i]
            if a == "--log-level", i + 1 < arguments.count { options += [a, arguments[i + 1]]; i += 2; continue }
            if a.hasPrefix("--log-level=") || a == "--quiet" { options.append(a); i += 1; continue }
            rest.append(a); i += 1
        }
        if !options.isEmpty {
            do { _ = try LoggingOptions.parse(options) } catch { throw ValidationError(LoggingOptions.message(for: error)) }
        }
        return rest
    }
}

/// The commands' own progress and notes (info: stdout, silenced by --quiet); results, tables and
/// JSON are printed as they are.
let console = ConsoleLog.logger()
func say(_ line: String) { console.info("\(line)") }
