import Foundation
import Testing

/// Runs the built `vkprobe` binary the way a user would.
struct CLIRun { let status: Int32; let stdout: String; let stderr: String }

func vkprobeBinary() throws -> URL {
    let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [dir.appendingPathComponent("vkprobe"), dir.deletingLastPathComponent().appendingPathComponent("vkprobe")]
    where FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
    throw CLIError("vkprobe binary not found next to \(dir.path); run `swift build` first")
}

struct CLIError: Error, CustomStringConvertible { let description: String; init(_ d: String) { description = d } }

func runVkprobe(_ args: [String], environment: [String: String] = [:]) throws -> CLIRun {
    let process = Process()
    process.executableURL = try vkprobeBinary()
    process.arguments = args
    var env = ProcessInfo.processInfo.environment
    env["VKPROBE_CACHE_DIR"] = ""
    for (k, v) in environment { env[k] = v }
    process.environment = env
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return CLIRun(status: process.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
}

@Suite struct CLITests {
    @Test func devicesListsDevicesAsTextAndJSON() throws {
        let text = try runVkprobe(["devices"])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains("(chosen)"))
        #expect(text.stdout.contains("maxStorageBufferRange"))
        let json = try runVkprobe(["devices", "--json"])
        #expect(json.status == 0)
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let devices = try #require(object?["devices"] as? [[String: Any]])
        let chosen = try #require(object?["chosen"] as? Int)
        #expect(!devices.isEmpty && devices.indices.contains(chosen))
        #expect(devices[chosen]["name"] is String)
        if let lavapipe = devices.first(where: { ($0["name"] as? String)?.hasPrefix("llvmpipe") == true }) {
            #expect(lavapipe["subgroupSize"] as? Int == 8)
            #expect(lavapipe["maxStorageBufferRange"] as? Int == 128 << 20)
        }
    }

    @Test func noDriverIsAnActionableErrorNotACrash() throws {
        let run = try runVkprobe(["devices"], environment: ["VK_DRIVER_FILES": "/nonexistent/icd.json", "VK_ICD_FILENAMES": "/nonexistent/icd.json"])
        #expect(run.status == 1)
        #expect(run.stderr.contains("mesa-vulkan-drivers"), "stderr: \(run.stderr)")
    }

    @Test func noLoaderIsAnActionableErrorNotACrash() throws {
        let run = try runVkprobe(["devices"], environment: ["VKPROBE_VULKAN_LIBRARY": "/nonexistent/libvulkan.so.1"])
        #expect(run.status == 1)
        #expect(run.stderr.contains("No Vulkan loader"), "stderr: \(run.stderr)")
        #expect(run.stderr.contains("mesa-vulkan-drivers"))
    }

    @Test func unknownDeviceIsRefusedWithTheList() throws {
        let run = try runVkprobe(["devices", "--device", "no-such-gpu"])
        #expect(run.status == 1)
        #expect(run.stderr.contains("No Vulkan device matches 'no-such-gpu'"))
    }

    @Test func demoSmokeDispatchPasses() throws {
        let run = try runVkprobe(["smoke", "--validation", "--elements", "65536"])
        #expect(run.status == 0, "\(run.stdout)\n\(run.stderr)")
        #expect(run.stdout.contains("ok"))
        #expect(!run.stderr.contains("validation"), "\(run.stderr)")
    }
}
