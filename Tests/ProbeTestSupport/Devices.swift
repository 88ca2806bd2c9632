import Foundation
@_exported import ProbeTestBasics
import ProbeKernels
import ProbeShaders
import Testing
import VulkanCompute

/// Validation is on whenever the Khronos layer is installed (`make test` installs it), and
/// required when VKPROBE_REQUIRE_VALIDATION=1 (set by `make test` and CI): every test target
/// creates its devices here, so every one of them fails on a missing layer or any message.
public let validationAvailable: Bool = {
    guard let lib = try? VulkanLibrary.shared() else { return false }
    return lib.layerNames().contains(VulkanInstance.validationLayerName)
}()

/// A device under the validation layer (when installed), with no on-disk pipeline cache.
public func makeTestDevice(configure: (inout DeviceOptions) -> Void = { _ in }) throws -> ComputeDevice {
    if ProcessInfo.processInfo.environment["VKPROBE_REQUIRE_VALIDATION"] == "1" && !validationAvailable {
        throw VulkanError.invalidArgument("VKPROBE_REQUIRE_VALIDATION=1 but VK_LAYER_KHRONOS_validation is not installed")
    }
    var options = DeviceOptions(validation: validationAvailable)
    options.pipelineCacheDirectory = nil
    configure(&options)
    return try ComputeDevice(options: options, shaders: BundledShaders.shared)
}

/// A kernel context on a test device; `variants` adjusts the kernel choice, `maxBindingBytes`
/// caps the binding size (every op then takes its split path on small shapes).
public func makeContext(maxBindingBytes: Int? = nil, variants: ((inout KernelVariants) -> Void)? = nil) throws -> KernelContext {
    let device = try makeTestDevice { if let m = maxBindingBytes { $0.maxBindingBytes = bindingLimit(m) } }
    var v = KernelVariants(for: device.capabilities)
    variants?(&v)
    return try KernelContext(device: device, variants: v)
}

/// Fails the test on any message from the validation layer.
public func expectNoValidationMessages(_ device: ComputeDevice, sourceLocation: SourceLocation = #_sourceLocation) {
    let messages = device.validationLog?.messages ?? []
    #expect(messages.isEmpty, "validation layer reported: \(messages.prefix(5).map(\.description).joined(separator: "\n"))",
            sourceLocation: sourceLocation)
}

public func expectNoValidationMessages(_ ctx: KernelContext, sourceLocation: SourceLocation = #_sourceLocation) {
    expectNoValidationMessages(ctx.device, sourceLocation: sourceLocation)
}



/// The test device's capabilities, read once (nil where no device opens).
let testDeviceCapabilities: DeviceCapabilities? = try? makeTestDevice().capabilities

/// The test device's storage-buffer offset alignment (16 on lavapipe, 256 on SwiftShader).
public var deviceStorageAlignment: Int { testDeviceCapabilities?.minStorageBufferOffsetAlignment ?? 16 }

/// A binding limit giving operands the room `bytes` gives them where bindings start on 16-byte
/// boundaries: a window is aligned down to the device's offset alignment, so on SwiftShader (256)
/// each binding carries up to 240 more bytes than on lavapipe. The tiny-limit tests were sized
/// for lavapipe; this keeps them meaningful (and splitting) on both.
public func bindingLimit(_ bytes: Int) -> Int {
    deviceStorageAlignment <= 16 ? bytes : (bytes + deviceStorageAlignment - 16 + 255) / 256 * 256
}

/// Whether the test device stores 16-bit values (SwiftShader does not): f16/bf16 parts of tests
/// run where it does; elsewhere the kernels' refusal is what is tested (`ShaderRequirementsTests`).
public var deviceHas16BitStorage: Bool { testDeviceCapabilities?.storageBuffer16BitAccess ?? false }

/// The storage dtypes the test device runs: f32, and f16 where it has 16-bit storage.
public var storageDTypes: [DType] { deviceHas16BitStorage ? [.f32, .f16] : [.f32] }
