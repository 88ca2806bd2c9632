import CVulkan
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The Vulkan loader, opened with dlopen so a machine without it gets an actionable error
/// (not a dynamic-linker failure before `main`). Set `VKPROBE_VULKAN_LIBRARY` to use another path.
public final class VulkanLibrary: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer
    let getInstanceProcAddr: PFN_vkGetInstanceProcAddr
    public let path: String

    public static let defaultCandidates = ["libvulkan.so.1", "libvulkan.so"]

    /// Opens the first loader that loads from `candidates` (default: $VKPROBE_VULKAN_LIBRARY, then
    /// the system's libvulkan.so.1).
    public init(candidates: [String]? = nil) throws {
        _ = ShaderCacheKey.guardMesaCache   // before any driver is loaded
        var tried = candidates ?? []
        if candidates == nil {
            if let env = ProcessInfo.processInfo.environment["VKPROBE_VULKAN_LIBRARY"], !env.isEmpty {
                tried = [env]
            } else {
                tried = Self.defaultCandidates
            }
        }
        var lastError = "not found"
        for name in tried {
            if let h = dlopen(name, RTLD_NOW | RTLD_LOCAL) {
                guard let sym = dlsym(h, "vkGetInstanceProcAddr") else {
                    dlclose(h)
                    lastError = "\(name) has no vkGetInstanceProcAddr"
                    continue
                }
                handle = h
                path = name
                getInstanceProcAddr = unsafeBitCast(sym, to: PFN_vkGetInstanceProcAddr.self)
                return
            }
            if let e = dlerror() { lastError = String(cString: e) }
        }
        throw VulkanError.loaderMissing(tried: tried, reason: lastError)
    }

    /// A process-wide loader, opened on first use.
    public static func shared() throws -> VulkanLibrary {
        try sharedLock.withLock {
            if let lib = sharedLibrary { return lib }
            let lib = try VulkanLibrary()
            sharedLibrary = lib
            return lib
        }
    }
    private static let sharedLock = NSLock()
    nonisolated(unsafe) private static var sharedLibrary: VulkanLibrary?

    /// Loads a global or instance-level entry point.
    func load<F>(_ name: String, instance: VkInstance? = nil) throws -> F {
        guard let p = getInstanceProcAddr(instance, name) else { throw VulkanError.missingEntryPoint(name) }
        return unsafeBitCast(p, to: F.self)
    }

    func loadOptional<F>(_ name: String, instance: VkInstance?) -> F? {
        guard let p = getInstanceProcAddr(instance, name) else { return nil }
        return unsafeBitCast(p, to: F.self)
    }

    /// The instance-level API version the loader supports.
    public func instanceVersion() -> UInt32 {
        let f: PFN_vkEnumerateInstanceVersion? = loadOptional("vkEnumerateInstanceVersion", instance: nil)
        var v: UInt32 = makeAPIVersion(1, 0, 0)
        if let f { _ = f(&v) }
        return v
    }

    public func layerNames() -> [String] {
        guard let f: PFN_vkEnumerateInstanceLayerProperties = loadOptional("vkEnumerateInstanceLayerProperties", instance: nil) else { return [] }
        var count: UInt32 = 0
        guard f(&count, nil) == VK_SUCCESS, count > 0 else { return [] }
        var props = [VkLayerProperties](repeating: VkLayerProperties(), count: Int(count))
        guard f(&count, &props) == VK_SUCCESS else { return [] }
        return props.prefix(Int(count)).map { cString(tuple: $0.layerName) }
    }

    public func instanceExtensionNames() -> [String] {
        guard let f: PFN_vkEnumerateInstanceExtensionProperties = loadOptional("vkEnumerateInstanceExtensionProperties", instance: nil) else { return [] }
        var count: UInt32 = 0
        guard f(nil, &count, nil) == VK_SUCCESS, count > 0 else { return [] }
        var props = [VkExtensionProperties](repeating: VkExtensionProperties(), count: Int(count))
        guard f(nil, &count, &props) == VK_SUCCESS else { return [] }
        return props.prefix(Int(count)).map { cString(tuple: $0.extensionName) }
    }
}

/// `VK_MAKE_API_VERSION` does not import into Swift (function-like macro).
public func makeAPIVersion(_ major: UInt32, _ minor: UInt32, _ patch: UInt32, variant: UInt32 = 0) -> UInt32 {
    (variant << 29) | (major << 22) | (minor << 12) | patch
}

public func apiVersionString(_ v: UInt32) -> String {
    "\((v >> 22) & 0x7F).\((v >> 12) & 0x3FF).\(v & 0xFFF)"
}

/// Reads a fixed-size C char array (imported as a tuple) as a String.
func cString<T>(tuple: T) -> String {
    withUnsafeBytes(of: tuple) { raw in
        let bytes = raw.bindMemory(to: UInt8.self)
        let end = bytes.firstIndex(of: 0) ?? bytes.count
        return String(decoding: bytes[..<end], as: UTF8.self)
    }
}

/// Keeps C strings alive for the duration of a `vkCreate*` call.
final class CStringArray {
    let pointers: [UnsafeMutablePointer<CChar>]
    init(_ strings: [String]) { pointers = strings.map { strdup($0)! } }
    deinit { pointers.forEach { free($0) } }
    func withPointers<R>(_ body: (UnsafePointer<UnsafePointer<CChar>?>?) throws -> R) rethrows -> R {
        let ptrs: [UnsafePointer<CChar>?] = pointers.map { UnsafePointer($0) }
        return try ptrs.withUnsafeBufferPointer { try body($0.isEmpty ? nil : $0.baseAddress) }
    }
    var count: UInt32 { UInt32(pointers.count) }
}
