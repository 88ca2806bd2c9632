import Foundation

/// Runs the built `vkprobe` binary the way a user would.
public struct CLIRun: Sendable { public let status: Int32; public let stdout: String; public let stderr: String }

public struct CLIError: Error, CustomStringConvertible { public let description: String; public init(_ d: String) { description = d } }

/// The `vkprobe` executable next to the test bundle.
public func vkprobeBinary() throws -> URL {
    let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [dir.appendingPathComponent("vkprobe"), dir.deletingLastPathComponent().appendingPathComponent("vkprobe")]
    where FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
    throw CLIError("vkprobe binary not found next to \(dir.path); run `swift build` first")
}

/// The environment every spawned vkprobe gets: no on-disk pipeline cache.
public func vkprobeEnvironment(_ extra: [String: String] = [:]) -> [String: String] {
    var env = ProcessInfo.processInfo.environment
    env["VKPROBE_CACHE_DIR"] = ""
    for (k, v) in extra { env[k] = v }
    return env
}

public func runVkprobe(_ args: [String], environment: [String: String] = [:]) throws -> CLIRun {
    try runProgram(try vkprobeBinary(), args, environment: vkprobeEnvironment(environment))
}

/// Runs a program to its end with exactly `environment`, collecting both outputs.
public func runProgram(_ executable: URL, _ args: [String], environment: [String: String]) throws -> CLIRun {
    let process = Process()
    process.executableURL = executable
    process.arguments = args
    process.environment = environment
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    // Drain both pipes concurrently so a chatty child cannot block on a full pipe.
    final class Box: @unchecked Sendable { var data = Data() }
    let errBox = Box()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async { errBox.data = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    let o = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    process.waitUntilExit()
    return CLIRun(status: process.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: errBox.data, as: UTF8.self))
}
