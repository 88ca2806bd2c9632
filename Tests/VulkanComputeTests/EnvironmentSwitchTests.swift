import Foundation
import ProbeShaders
import Testing
@testable import VulkanCompute

/// The device's environment switches parse sizes as people write them, and a value that does not
/// parse is refused when the device opens, naming it (VKPROBE_MEMORY_BUDGET=2G was ignored silently).
@Suite struct EnvironmentSwitchTests {
    @Test func sizesParse() {
        #expect(DeviceOptions.byteSize("1048576") == 1 << 20)
        #expect(DeviceOptions.byteSize("512M") == 512 << 20)
        #expect(DeviceOptions.byteSize("2G") == 2 << 30)
        #expect(DeviceOptions.byteSize("2gb") == 2 << 30)
        #expect(DeviceOptions.byteSize("1.5GiB") == 3 << 29)
        #expect(DeviceOptions.byteSize("64 KiB") == 64 << 10)
        for bad in ["", "lots", "-1G", "0", "1e30G", "G", "nan"] { #expect(DeviceOptions.byteSize(bad) == nil, "\(bad)") }
    }

    @Test func aValueThatDoesNotParseIsRefused() throws {
        let o = DeviceOptions().applying(environment: ["VKPROBE_MEMORY_BUDGET": "plenty", "VKPROBE_MAX_BINDING": "1M"])
        #expect(o.maxBindingBytes == 1 << 20 && o.memoryBudget == nil)
        #expect(throws: VulkanError.invalidArgument("VKPROBE_MEMORY_BUDGET=plenty: expected a size in bytes, or with a unit (512M, 2G, 1.5GiB; K, M, G, T are powers of 1024)")) {
            _ = try ComputeDevice(options: o, shaders: BundledShaders.shared)
        }
        let sized = DeviceOptions().applying(environment: ["VKPROBE_MEMORY_BUDGET": "2G"])
        #expect(sized.memoryBudget == 2 << 30 && sized.environmentProblem == nil)
    }
}
