import Foundation
import ProbeShaders
import Testing
@testable import VulkanCompute

/// Validation is on whenever the Khronos layer is installed (`make test` installs it), and
/// required when VKPROBE_REQUIRE_VALIDATION=1 (set by `make test` and CI).
let validationAvailable: Bool = {
    guard let lib = try? VulkanLibrary.shared() else { return false }
    return lib.layerNames().contains(VulkanInstance.validationLayerName)
}()

func makeTestDevice(configure: (inout DeviceOptions) -> Void = { _ in }) throws -> ComputeDevice {
    if ProcessInfo.processInfo.environment["VKPROBE_REQUIRE_VALIDATION"] == "1" && !validationAvailable {
        throw VulkanError.invalidArgument("VKPROBE_REQUIRE_VALIDATION=1 but VK_LAYER_KHRONOS_validation is not installed")
    }
    var options = DeviceOptions(validation: validationAvailable)
    options.pipelineCacheDirectory = nil
    configure(&options)
    return try ComputeDevice(options: options, shaders: BundledShaders.shared)
}

/// Fails the test on any message from the validation layer.
func expectNoValidationMessages(_ device: ComputeDevice, sourceLocation: SourceLocation = #_sourceLocation) {
    let messages = device.validationLog?.messages ?? []
    #expect(messages.isEmpty, "validation layer reported: \(messages.map(\.description).joined(separator: "\n"))", sourceLocation: sourceLocation)
}

func unaryKernel(_ device: ComputeDevice, op: UInt32 = 0, localSize: UInt32 = 64) throws -> Kernel {
    try device.pipelines.kernel(KernelDescriptor(shader: "unary", bindings: 2, pushConstantBytes: 20, specialization: [localSize, op]))
}

func affinePush(n: Int, alpha: Float, beta: Float) -> [UInt32] { [UInt32(n), alpha.bitPattern, beta.bitPattern, 0, 0] }

func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("vkprobe-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}
