import Foundation
import ProbeTestSupport
import Testing

@Suite struct CLITests {
    @Test func devicesListsDevicesAsTextAndJSON() throws {
        let text = try runVkprobe(["devices"])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains("(chosen)"))
        #expect(text.stdout.contains("maxStorageBufferRange"))
        #expect(text.stdout.contains("maxTexelBufferElements") && text.stdout.contains("shader caches") && text.stdout.contains("keyed w"), "\(text.stdout)")
        // lavapipe: its lane count and whether 512-bit lanes were an option (never set by us).
        if text.stdout.contains("llvmpipe"), ProcessInfo.processInfo.environment["LP_NATIVE_VECTOR_WIDTH"] == nil {
            #expect(text.stdout.contains("vector width              256 bits (8 lanes; LP_NATIVE_VECTOR_WIDTH unset)"), "\(text.stdout)")
        }
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

/// The README's layout table names every command the binary has (docs that match the code).
@Suite struct ReadmeLayoutTests {
    @Test func layoutListsEveryCommand() throws {
        let help = try runVkprobe(["--help"])
        #expect(help.status == 0, "\(help.stderr)")
        let lines = help.stdout.components(separatedBy: "\n")
        let start = try #require(lines.firstIndex { $0.hasPrefix("SUBCOMMANDS") })
        // Subcommand lines are indented by two spaces; their continuation lines by more.
        let commands = lines[(start + 1)...].prefix { !$0.isEmpty && !$0.hasPrefix("  See ") }
            .filter { $0.hasPrefix("  ") && !$0.hasPrefix("   ") }.compactMap { $0.split(separator: " ").first.map(String.init) }
        #expect(commands.count >= 10, "\(commands)")
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let row = try #require(readme.components(separatedBy: "\n").first { $0.hasPrefix("| `Sources/vkprobe` |") }, "README's layout table has no Sources/vkprobe row")
        for c in commands { #expect(row.contains("`\(c)`"), "README's layout table does not list `vkprobe \(c)`") }
    }
}

/// No run is handed code built for another lavapipe vector width: `vkprobe smoke` (which checks
/// that the code's subgroups are the device's) at 4 lanes, then at the default width, then at 4
/// again, all in one cache folder. Mesa 22.3 keys its shader cache by none of the width: without
/// the per-key folders the default run was served 4-lane code and failed.
@Suite struct ShaderCacheWidthTests {
    @Test func cachesArePerVectorWidth() throws {
        guard try runVkprobe(["devices"]).stdout.contains("llvmpipe") else { return }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vkprobe-width-cache-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        var base = vkprobeEnvironment(["XDG_CACHE_HOME": dir.path, "VKPROBE_CACHE_DIR": dir.appendingPathComponent("ours").path])
        for key in ["MESA_SHADER_CACHE_DIR", "VKPROBE_KEYED_MESA_CACHE_DIR", "MESA_SHADER_CACHE_DISABLE", "LP_NATIVE_VECTOR_WIDTH"] { base.removeValue(forKey: key) }
        for width in ["128", nil, "128"] as [String?] {
            var env = base
            if let width { env["LP_NATIVE_VECTOR_WIDTH"] = width }
            let run = try runProgram(try vkprobeBinary(), ["smoke", "--elements", "4096"], environment: env)
            #expect(run.status == 0, "width \(width ?? "default"): \(run.stdout)\n\(run.stderr)")
            #expect(run.stdout.contains("subgroups: \(width == nil ? "" : "4 lanes")"), "\(run.stdout)")
        }
        let mesa = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("vkprobe").path)
        #expect(mesa.contains { $0.hasPrefix("mesa-w128-") } && mesa.contains { $0.hasPrefix("mesa-wauto-") }, "\(mesa)")
        let ours = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("ours").path)
        #expect(ours.filter { $0.hasPrefix("pipelines-") }.count == 2, "one pipeline cache file per width: \(ours)")
    }
}
