import CVulkan
import Foundation

/// Errors from the device layer. Every message says what failed and, where there is one, what to do.
public enum VulkanError: Error, CustomStringConvertible, Equatable {
    case loaderMissing(tried: [String], reason: String)
    case missingEntryPoint(String)
    case call(String, VkResult)
    case noDevice(String)
    case deviceNotFound(selector: String, available: [String])
    case outOfMemory(bytes: Int, heap: String, detail: String)
    case bindingTooLarge(bytes: Int, limit: Int, what: String)
    /// A uniform texel buffer of more texels than the device's maxTexelBufferElements.
    case texelBufferTooLarge(texels: Int, limit: Int, what: String)
    case invalidArgument(String)
    case shaderMissing(String)

    public var description: String {
        switch self {
        case let .loaderMissing(tried, reason):
            return "No Vulkan loader found (tried \(tried.joined(separator: ", ")): \(reason). "
                + "Install the loader and a driver: `sudo apt-get install libvulkan1 mesa-vulkan-drivers` "
                + "(mesa-vulkan-drivers provides lavapipe, a CPU Vulkan device), or set VKPROBE_VULKAN_LIBRARY to the loader's path."
        case let .missingEntryPoint(name):
            return "The Vulkan loader or driver does not provide \(name); update the driver (mesa-vulkan-drivers or the GPU vendor's)."
        case let .call(name, result):
            return "\(name) failed with \(resultName(result))"
        case let .noDevice(detail):
            return "No Vulkan device found (\(detail)). Install a driver: `sudo apt-get install mesa-vulkan-drivers` "
                + "gives lavapipe, a CPU device; GPU users need their vendor's Vulkan driver. "
                + "If a driver is installed, check VK_DRIVER_FILES/VK_ICD_FILENAMES."
        case let .deviceNotFound(selector, available):
            return "No Vulkan device matches '\(selector)'. Available: "
                + available.enumerated().map { "[\($0.offset)] \($0.element)" }.joined(separator: ", ")
                + ". Pick one by index or by a substring of its name (`vkprobe devices` lists them)."
        case let .outOfMemory(bytes, heap, detail):
            return "Cannot allocate \(formatBytes(bytes)) on \(heap): \(detail)"
        case let .bindingTooLarge(bytes, limit, what):
            return "\(what): binding of \(formatBytes(bytes)) exceeds the device's maxStorageBufferRange of \(formatBytes(limit)); split the tensor into chunks of at most that size"
        case let .texelBufferTooLarge(texels, limit, what):
            return "\(what): a texel buffer of \(texels) texels exceeds the device's maxTexelBufferElements of \(limit); bind it as a storage buffer or split it into views of at most that many texels"
        case let .invalidArgument(message):
            return message
        case let .shaderMissing(name):
            return "Shader resource '\(name).spv' is missing from the ProbeShaders bundle; add Shaders/\(name).comp (or a line in Shaders/variants.txt) and rebuild"
        }
    }
}

/// Throws `VulkanError.call` unless `result` is VK_SUCCESS.
@inline(__always)
func check(_ result: VkResult, _ name: @autoclosure () -> String) throws {
    if result != VK_SUCCESS { throw VulkanError.call(name(), result) }
}

func resultName(_ r: VkResult) -> String {
    switch r {
    case VK_SUCCESS: return "VK_SUCCESS"
    case VK_NOT_READY: return "VK_NOT_READY"
    case VK_TIMEOUT: return "VK_TIMEOUT"
    case VK_INCOMPLETE: return "VK_INCOMPLETE"
    case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY"
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY"
    case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED"
    case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST (the driver reset the device; a kernel may have run too long or read out of bounds)"
    case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT (install vulkan-validationlayers)"
    case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT"
    case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT"
    case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER (no usable Vulkan driver: install mesa-vulkan-drivers or your GPU vendor's driver)"
    case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS"
    case VK_ERROR_OUT_OF_POOL_MEMORY: return "VK_ERROR_OUT_OF_POOL_MEMORY"
    default: return "VkResult \(r.rawValue)"
    }
}

public func formatBytes(_ n: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(n), u = 0
    while v >= 1024, u < units.count - 1 { v /= 1024; u += 1 }
    return u == 0 ? "\(n) B" : "\(String(format: "%.1f", v)) \(units[u]) (\(n) bytes)"
}
