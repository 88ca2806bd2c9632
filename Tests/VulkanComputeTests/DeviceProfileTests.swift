import Foundation
import ProbeShaders
import ProbeTestSupport
import Testing
@testable import VulkanCompute

/// GPU profiles (Profiles/*.json, `VKPROBE_DEVICE_PROFILE`): a real GPU's limits and features laid
/// over the device that runs the kernels. `make test` runs the goldens under each.
@Suite(.serialized) struct DeviceProfileTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Profiles")
    static let files: [String] = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter { $0.hasSuffix(".json") }.sorted()

    /// The device as its driver reports it, whatever profile the environment names.
    static func realCapabilities() throws -> DeviceCapabilities {
        let instance = try VulkanInstance()
        return instance.devices[try instance.chooseDevice(nil)]
    }

    @Test func profilesArePresent() {
        #expect(Self.files.count >= 4 && ["amd", "intel", "nvidia", "qualcomm"].allSatisfy { v in Self.files.contains { $0.hasPrefix(v) } }, "\(Self.files)")
    }

    /// Every limit lowered to the profile's (alignments raised), features kept where both have them,
    /// the device class the profile's; the subgroup size stays the executing device's.
    @Test(arguments: files) func lowersTheDeviceToTheProfile(_ file: String) throws {
        let p = try DeviceProfile.load(Self.folder.appendingPathComponent(file).path)
        let real = try Self.realCapabilities()
        let c = p.applied(to: real)
        #expect(c.name == "\(real.name) as \(p.name)" && c.deviceType == p.deviceType)
        #expect(c.maxStorageBufferRange == min(real.maxStorageBufferRange, p.maxStorageBufferRange))
        #expect(c.maxTexelBufferElements == min(real.maxTexelBufferElements, p.maxTexelBufferElements))
        #expect(c.maxComputeWorkGroupInvocations == min(real.maxComputeWorkGroupInvocations, p.maxComputeWorkGroupInvocations))
        #expect(c.maxComputeSharedMemorySize == min(real.maxComputeSharedMemorySize, p.maxComputeSharedMemorySize))
        #expect(c.maxPushConstantsSize == min(real.maxPushConstantsSize, p.maxPushConstantsSize))
        #expect(c.minStorageBufferOffsetAlignment == max(real.minStorageBufferOffsetAlignment, p.minStorageBufferOffsetAlignment))
        #expect(c.minTexelBufferOffsetAlignment == max(real.minTexelBufferOffsetAlignment, p.minTexelBufferOffsetAlignment))
        #expect(c.storageBuffer16BitAccess == (real.storageBuffer16BitAccess && p.storageBuffer16BitAccess))
        #expect(c.shaderFloat16 == (real.shaderFloat16 && p.shaderFloat16))
        #expect(c.subgroupSize == real.subgroupSize)
    }

    /// A device opened with a profile is that device: its capabilities, and a discrete profile
    /// takes the staging path.
    @Test func aDeviceOpensUnderAProfile() throws {
        var options = DeviceOptions(validation: validationAvailable)
        options.pipelineCacheDirectory = nil
        options.profilePath = Self.folder.appendingPathComponent("nvidia-ada.json").path
        let device = try ComputeDevice(options: options, shaders: BundledShaders.shared)
        #expect(device.capabilities.name.hasSuffix("as NVIDIA GeForce RTX 4090 (Ada)") && device.capabilities.deviceType == "discrete-gpu")
        #expect(!device.directHostAccess && device.profile?.name == "NVIDIA GeForce RTX 4090 (Ada)")
    }

    /// A file that is not a profile is refused naming the file and what is wrong.
    @Test func badProfilesAreRefusedByName() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let missing = dir.appendingPathComponent("nope.json").path
        #expect { _ = try DeviceProfile.load(missing) } throws: { "\($0)".contains(missing) && "\($0)".contains("cannot read") }
        var object = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.folder.appendingPathComponent("nvidia-ada.json"))) as! [String: Any]
        object["maxStorageBufferRange"] = nil
        let partial = dir.appendingPathComponent("partial.json")
        try JSONSerialization.data(withJSONObject: object).write(to: partial)
        #expect { _ = try DeviceProfile.load(partial.path) } throws: { "\($0)".contains(partial.path) && "\($0)".contains("maxStorageBufferRange") }
        object["maxStorageBufferRange"] = 1 << 30
        object["minStorageBufferOffsetAlignment"] = 48
        try JSONSerialization.data(withJSONObject: object).write(to: partial)
        #expect { _ = try DeviceProfile.load(partial.path) } throws: { "\($0)".contains("power of two") }
    }

    /// Under small limits (65536 texels, 128 MiB bindings, 128 invocations), each refusal names the
    /// limit exceeded and its value: a texel view one texel too long, a workgroup of 256, a storage
    /// binding 256 bytes too long.
    @Test func limitErrorsNameTheLimitExceeded() throws {
        var options = DeviceOptions(validation: validationAvailable)
        options.pipelineCacheDirectory = nil
        options.profilePath = Self.folder.appendingPathComponent("small-limits.json").path
        let device = try ComputeDevice(options: options, shaders: BundledShaders.shared)
        #expect(device.capabilities.maxTexelBufferElements == 65536 && device.capabilities.minStorageBufferOffsetAlignment == 256)
        let k = try device.pipelines.kernel(CopyKernel.self, .texel, .init(localSizeX: 64, FLAT: true, VEC4: false, AXES: 1, QUAD_SRC: false))
        let src = try device.makeBuffer(bytes: 65537 * 4), dst = try device.makeBuffer(bytes: 65537 * 4)
        let stream = try CommandStream(device: device)
        let push = CopyKernel.Push(n: 65537, offIn: 0, offOut: 0, shape: [1, 1, 1, 1, 1, 65537], sIn: [0, 0, 0, 0, 0, 1], sOut: [0, 0, 0, 0, 0, 1],
                                   magic: [1, 1, 1, 1, 1, 1], shifts: 0)
        #expect { try stream.dispatch(k, [Binding(src.whole, .read, texel: .r32ui), .write(dst)], push: push, groups: (1, 1, 1)) }
            throws: { "\($0)".contains("maxTexelBufferElements of 65536") && "\($0)".contains("65537 texels") }
        #expect { _ = try device.pipelines.kernel(UnaryKernel.self, .base, .init(localSizeX: 256, OP: 0)) }
            throws: { "\($0)".contains("workgroup of 256 invocations") && "\($0)".contains("maxComputeWorkGroupInvocations of 128") }
        let big = try device.makeBuffer(bytes: (128 << 20) + 256)
        let unary = try device.pipelines.kernel(UnaryKernel.self, .base, .init(localSizeX: 64, OP: 0))
        #expect { try stream.dispatch(unary, [.read(big), .write(dst)], push: UnaryKernel.Push(n: 1, alpha: 1, beta: 0, offX: 0, offY: 0), groups: (1, 1, 1)) }
            throws: { "\($0)".contains("maxStorageBufferRange of 128.0 MiB") }
    }

    /// Under the environment's profile (`make test`'s profile steps): the test devices are that GPU.
    @Test func theEnvironmentsProfileIsInForce() throws {
        guard let path = ProcessInfo.processInfo.environment["VKPROBE_DEVICE_PROFILE"], !path.isEmpty else { return }
        let p = try DeviceProfile.load(path)
        let device = try makeTestDevice()
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        #expect(try encoder.encode(device.capabilities) == encoder.encode(p.applied(to: try Self.realCapabilities())))
        expectNoValidationMessages(device)
    }
}
