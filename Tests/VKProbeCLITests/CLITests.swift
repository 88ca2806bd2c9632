import Foundation
import ProbeTestSupport
import Testing

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
