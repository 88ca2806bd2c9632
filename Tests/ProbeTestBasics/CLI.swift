import Foundation
import Testing

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

/// Open MPI's mpirun, if installed.
public let mpirunPath: String? = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first { FileManager.default.isExecutableFile(atPath: $0) }

/// Whether the multi-process tests can run: mpirun present, or (with VKPROBE_REQUIRE_MPI=1, as
/// `make test` sets) a failure recorded for its absence.
public func mpiAvailable(sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
    if mpirunPath != nil { return true }
    if ProcessInfo.processInfo.environment["VKPROBE_REQUIRE_MPI"] == "1" {
        Issue.record("mpirun not found (apt install openmpi-bin)", sourceLocation: sourceLocation)
    }
    return false
}

/// Runs `vkprobe args` as `mpirun --oversubscribe -np n` (every rank's output merged), with
/// `environment` passed on to every rank.
public func runVkprobeMPI(_ n: Int, _ args: [String], environment: [String: String] = [:]) throws -> CLIRun {
    guard let mpirun = mpirunPath else { throw CLIError("mpirun not found (apt install openmpi-bin)") }
    var env = vkprobeEnvironment(environment)
    if getuid() == 0 { env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"; env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1" }
    let forwarded = ["VKPROBE_CACHE_DIR"] + (env["VKPROBE_VALIDATION"] != nil ? ["VKPROBE_VALIDATION"] : []) + environment.keys.sorted()
    return try runProgram(URL(fileURLWithPath: mpirun), ["--oversubscribe", "-np", "\(n)"] + forwarded.flatMap { ["-x", $0] } + [try vkprobeBinary().path] + args,
                          environment: env)
}
