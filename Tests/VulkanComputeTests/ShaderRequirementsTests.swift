import ProbeShaders
import ProbeTestSupport
import Testing
@testable import VulkanCompute

/// A module's declared SPIR-V capabilities are read from the module itself and a device lacking one
/// gets a refusal naming the feature, before any driver sees the module (SwiftShader crashed with
/// SIGILL on a 16-bit kernel it had no storage for).
@Suite struct ShaderRequirementsTests {
    @Test func readsCapabilitiesFromTheModule() throws {
        let f16 = try BundledShaders.shared.spirv(named: "copy_f32_f16")
        let f32 = try BundledShaders.shared.spirv(named: "copy")
        #expect(ShaderRequirements.capabilities(f16).contains(4433), "StorageBuffer16BitAccess")
        #expect(!ShaderRequirements.capabilities(f32).contains(4433))
        #expect(ShaderRequirements.capabilities(try BundledShaders.shared.spirv(named: "softmax_sg")).contains(63), "GroupNonUniformArithmetic")
    }

    @Test func aDeviceWithoutTheFeatureRefusesByName() throws {
        let device = try makeTestDevice()
        var caps = device.capabilities
        caps.storageBuffer16BitAccess = false
        caps.shaderFloat16 = false
        let f16 = try BundledShaders.shared.spirv(named: "layernorm_f16out")
        #expect(ShaderRequirements.missing(f16, on: caps).contains { $0.hasPrefix("storageBuffer16BitAccess") })
        #expect(ShaderRequirements.missing(try BundledShaders.shared.spirv(named: "layernorm"), on: caps).isEmpty)
        caps.subgroupArithmetic = false
        #expect(ShaderRequirements.missing(try BundledShaders.shared.spirv(named: "layernorm_sg"), on: caps) == ["subgroup arithmetic"])
        // Through a real device: lavapipe has 16-bit storage, so nothing it runs is refused.
        if device.capabilities.storageBuffer16BitAccess {
            #expect(ShaderRequirements.missing(f16, on: device.capabilities).isEmpty)
        }
    }
}
