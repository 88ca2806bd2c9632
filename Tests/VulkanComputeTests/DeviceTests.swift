import Foundation
import ProbeTestSupport
import Testing
@testable import VulkanCompute

@Suite struct DeviceTests {
    @Test func createsDeviceAndReadsCapabilities() throws {
        let device = try makeTestDevice()
        let c = device.capabilities
        #expect(c.supported)
        #expect(!c.name.isEmpty)
        #expect(c.computeQueueFamily != nil)
        #expect(c.subgroupSize >= 1 && c.minSubgroupSize <= c.subgroupSize && c.subgroupSize <= c.maxSubgroupSize)
        #expect(c.maxStorageBufferRange >= 1 << 27 || c.maxStorageBufferRange >= 1 << 16)
        #expect(c.maxPushConstantsSize >= 128)
        #expect(c.minStorageBufferOffsetAlignment >= 1)
        #expect(!c.memoryHeaps.isEmpty && !c.memoryTypes.isEmpty)
        #expect(c.memoryTypes.allSatisfy { $0.heap < c.memoryHeaps.count })
        #expect(c.maxComputeWorkGroupSize.count == 3 && c.maxComputeWorkGroupCount.count == 3)
        if c.name.hasPrefix("llvmpipe") {
            // Facts measured on lavapipe (PLATFORM.md: Mesa 22.3; Mesa 25.0 the same but for 256
            // bytes of push constants).
            #expect(c.deviceType == "cpu")
            #expect(c.subgroupSize == 8)
            #expect(c.maxStorageBufferRange == 128 << 20)
            #expect(c.maxComputeSharedMemorySize == 32 << 10)
            #expect(c.maxPushConstantsSize == ((c.mesaVersion?.major ?? 0) >= 25 ? 256 : 128))
            #expect(c.minStorageBufferOffsetAlignment == 16)
            #expect(c.shaderFloat16 && c.storageBuffer16BitAccess)
            #expect(!c.cooperativeMatrix && c.cooperativeMatrixShapes.isEmpty)
            #expect(c.timestamps && c.timestampPeriodNs == 1)
            #expect(c.unifiedMemory)
        }
        // Capabilities round-trip through JSON (what `vkprobe devices --json` prints).
        let data = try JSONEncoder().encode(c)
        let back = try JSONDecoder().decode(DeviceCapabilities.self, from: data)
        #expect(back.name == c.name && back.maxStorageBufferRange == c.maxStorageBufferRange)
        expectNoValidationMessages(device)
    }

    @Test func choosesDevicesByIndexNameAndDefault() throws {
        let instance = try VulkanInstance(options: InstanceOptions(validation: validationAvailable))
        let best = try instance.chooseDevice(nil)
        #expect(instance.devices[best].supported)
        #expect(try instance.chooseDevice("0") == 0)
        let first = instance.devices[0].name
        #expect(try instance.chooseDevice(String(first.prefix(4)).uppercased()) == 0)
        #expect(throws: VulkanError.self) { try instance.chooseDevice("no-such-gpu-xyz") }
        #expect(throws: VulkanError.self) { try instance.chooseDevice("\(instance.devices.count + 3)") }
        do {
            _ = try instance.chooseDevice("no-such-gpu-xyz")
        } catch {
            #expect("\(error)".contains(first), "the error lists the available devices")
        }
    }

    @Test func missingLoaderGivesActionableError() {
        do {
            _ = try VulkanLibrary(candidates: ["/nonexistent/libvulkan.so.1"])
            Issue.record("expected an error")
        } catch {
            let text = "\(error)"
            #expect(text.contains("No Vulkan loader"))
            #expect(text.contains("mesa-vulkan-drivers"))
        }
    }

    @Test func missingShaderIsNamed() throws {
        let device = try makeTestDevice()
        do {
            _ = try device.pipelines.kernel(KernelDescriptor(shader: "no_such_kernel", bindings: 1))
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("no_such_kernel.spv"))
        }
        expectNoValidationMessages(device)
    }
}
