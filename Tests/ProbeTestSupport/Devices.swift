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
    let device = try makeTestDevice { if let m = maxBindingBytes { $0.maxBindingBytes = m } }
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


