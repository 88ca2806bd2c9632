import Foundation
import ProbeAutodiff
import ProbeKernels
import ProbeShaders
import Testing
@testable import VulkanCompute

let validationAvailable: Bool = {
    guard let lib = try? VulkanLibrary.shared() else { return false }
    return lib.layerNames().contains(VulkanInstance.validationLayerName)
}()

func makeContext() throws -> KernelContext {
    if ProcessInfo.processInfo.environment["VKPROBE_REQUIRE_VALIDATION"] == "1" && !validationAvailable {
        throw VulkanError.invalidArgument("VKPROBE_REQUIRE_VALIDATION=1 but VK_LAYER_KHRONOS_validation is not installed")
    }
    var options = DeviceOptions(validation: validationAvailable)
    options.pipelineCacheDirectory = nil
    return try KernelContext(device: try ComputeDevice(options: options, shaders: BundledShaders.shared))
}

func expectNoValidationMessages(_ ctx: KernelContext, sourceLocation: SourceLocation = #_sourceLocation) {
    let messages = ctx.device.validationLog?.messages ?? []
    #expect(messages.isEmpty, "validation layer reported: \(messages.prefix(3).map(\.description).joined(separator: "\n"))", sourceLocation: sourceLocation)
}

/// ‖got − want‖ / ‖want‖ (absolute when want is zero); non-finite values give ∞.
func relativeError(_ got: [Float], _ want: [Float]) -> Double {
    guard got.count == want.count else { return .infinity }
    var num = 0.0, den = 0.0
    for (g, w) in zip(got, want) {
        guard g.isFinite else { return .infinity }
        let d = Double(g) - Double(w)
        num += d * d; den += Double(w) * Double(w)
    }
    return den > 0 ? (num / den).squareRoot() : num.squareRoot()
}

/// The goldens directory: $PROBE_GOLDENS, else ../shared/goldens next to the package root.
let goldensDirectory: URL = {
    if let env = ProcessInfo.processInfo.environment["PROBE_GOLDENS"], !env.isEmpty { return URL(fileURLWithPath: env) }
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    return root.deletingLastPathComponent().appendingPathComponent("shared/goldens")
}()

func goldenFiles() -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: goldensDirectory.path)) ?? []).filter { $0.hasSuffix(".safetensors") }.sorted()
}
