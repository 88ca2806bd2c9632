import CVulkan
import Foundation
import Logging

/// How to open a device.
public struct DeviceOptions: Sendable {
    /// Index or case-insensitive name substring; nil = $VKPROBE_DEVICE, else the best device.
    public var selector: String?
    public var instance: InstanceOptions
    /// Upper bound on the device memory this process allocates (nil = the heap size; on a CPU
    /// device three quarters of physical memory; the command line's $VKPROBE_MEMORY_BUDGET in bytes).
    public var memoryBudget: Int?
    /// Size of the large allocations that buffers are carved from.
    public var blockSize: Int = 256 << 20
    /// Where the on-disk pipeline cache lives; nil disables it. Default: $VKPROBE_CACHE_DIR, else
    /// $XDG_CACHE_HOME/vkprobe, else ~/.cache/vkprobe.
    public var pipelineCacheDirectory: URL? = DeviceOptions.defaultCacheDirectory()
    /// Map device-local memory when it is host-visible (lavapipe, integrated GPUs). Turning this off
    /// (the command line's VKPROBE_FORCE_STAGING=1, or VKPROBE_KERNELS=gpu, which takes a discrete
    /// GPU's paths throughout) sends every upload/download through staging copies, as on a
    /// discrete GPU — for testing that path on lavapipe.
    public var directHostAccess = ProcessInfo.processInfo.environment["VKPROBE_KERNELS"] != "gpu"
    /// Caps the binding size the op layer may use below the device's maxStorageBufferRange (a
    /// multiple of 256 bytes; the command line's $VKPROBE_MAX_BINDING). Tests set it tiny so that
    /// every op takes its split path on small shapes.
    public var maxBindingBytes: Int?
    /// A JSON file of a GPU's limits and features laid over the device (`DeviceProfile`); default
    /// $VKPROBE_DEVICE_PROFILE.
    public var profilePath: String? = ProcessInfo.processInfo.environment["VKPROBE_DEVICE_PROFILE"].flatMap { $0.isEmpty ? nil : $0 }
    /// A switch of the environment that did not parse: opening the device refuses with it.
    public var environmentProblem: String?

    public init(selector: String? = nil, validation: Bool? = nil) {
        self.selector = selector ?? ProcessInfo.processInfo.environment["VKPROBE_DEVICE"]
        self.instance = InstanceOptions(validation: validation)
    }

    /// These options with the command line's memory switches (read once at its start):
    /// VKPROBE_MEMORY_BUDGET and VKPROBE_MAX_BINDING (bytes, or sizes such as 512M, 2G, 1.5GiB),
    /// VKPROBE_FORCE_STAGING=1. A value that does not parse is not ignored: opening the device
    /// refuses, naming it.
    public func applying(environment env: [String: String]) -> DeviceOptions {
        var o = self
        for (name, apply) in [("VKPROBE_MEMORY_BUDGET", { (v: Int) in o.memoryBudget = v }), ("VKPROBE_MAX_BINDING", { (v: Int) in o.maxBindingBytes = v })] {
            guard let raw = env[name], !raw.isEmpty else { continue }
            if let v = Self.byteSize(raw) { apply(v) } else {
                o.environmentProblem = "\(name)=\(raw): expected a size in bytes, or with a unit (512M, 2G, 1.5GiB; K, M, G, T are powers of 1024)"
            }
        }
        if env["VKPROBE_FORCE_STAGING"] == "1" { o.directHostAccess = false }
        return o
    }

    /// Bytes from "1048576", "512M", "2G", "1.5GiB", "64MB" (binary units, as memory is sized).
    public static func byteSize(_ text: String) -> Int? {
        let s = text.trimmingCharacters(in: .whitespaces).uppercased()
        let units: [(String, Double)] = [("TIB", 0x1p40), ("GIB", 0x1p30), ("MIB", 0x1p20), ("KIB", 0x1p10), ("TB", 0x1p40), ("GB", 0x1p30), ("MB", 0x1p20),
                                         ("KB", 0x1p10), ("T", 0x1p40), ("G", 0x1p30), ("M", 0x1p20), ("K", 0x1p10), ("B", 1)]
        let (number, scale) = units.first { s.hasSuffix($0.0) }.map { (String(s.dropLast($0.0.count)), $0.1) } ?? (s, 1)
        guard let v = Double(number.trimmingCharacters(in: .whitespaces)), v.isFinite, v > 0, v * scale < 0x1p62 else { return nil }
        let bytes = (v * scale).rounded()
        return bytes >= 1 ? Int(bytes) : nil
    }

    public static func defaultCacheDirectory() -> URL? {
        let env = ProcessInfo.processInfo.environment
        if let dir = env["VKPROBE_CACHE_DIR"] { return dir.isEmpty ? nil : URL(fileURLWithPath: dir) }
        if let xdg = env["XDG_CACHE_HOME"], !xdg.isEmpty { return URL(fileURLWithPath: xdg).appendingPathComponent("vkprobe") }
        if let home = env["HOME"], !home.isEmpty { return URL(fileURLWithPath: home).appendingPathComponent(".cache/vkprobe") }
        return nil
    }
}

/// Where SPIR-V comes from (the ProbeShaders bundle in practice; tests may supply their own).
public protocol ShaderLibrary: Sendable {
    func spirv(named name: String) throws -> [UInt32]
}

/// A logical device with one compute queue, a memory sub-allocator and a pipeline cache.
/// Thread-safety: allocation, pipeline creation and queue submission are internally locked;
/// a `CommandStream` belongs to one thread at a time.
public final class ComputeDevice: @unchecked Sendable {
    public let instance: VulkanInstance
    public let capabilities: DeviceCapabilities
    /// The GPU profile laid over the device's own limits (`DeviceOptions.profilePath`), if any.
    public let profile: DeviceProfile?
    let physical: VkPhysicalDevice
    let handle: VkDevice
    let fns: DeviceFunctions
    let queue: VkQueue
    let queueFamily: UInt32
    let queueLock = NSLock()
    public let shaders: ShaderLibrary
    let directHostAccess: Bool
    public private(set) var memory: MemoryAllocator!
    public private(set) var pipelines: PipelineCache!
    let layouts: DescriptorLayouts

    public var validationLog: ValidationLog? { instance.validationLog }
    public var name: String { capabilities.name }

    public convenience init(options: DeviceOptions = DeviceOptions(), shaders: ShaderLibrary) throws {
        let instance = try VulkanInstance(options: options.instance)
        try self.init(instance: instance, options: options, shaders: shaders)
    }

    public init(instance: VulkanInstance, options: DeviceOptions = DeviceOptions(), shaders: ShaderLibrary) throws {
        if let problem = options.environmentProblem { throw VulkanError.invalidArgument(problem) }
        self.instance = instance
        self.shaders = shaders
        let index = try instance.chooseDevice(options.selector)
        var caps = instance.devices[index]
        let profile = try options.profilePath.map(DeviceProfile.load)
        if let profile { caps = profile.applied(to: caps) }
        self.profile = profile
        // A discrete GPU's memory is not host-visible: its profile takes the staging path.
        self.directHostAccess = options.directHostAccess && profile?.deviceType != "discrete-gpu"
        if let cap = options.maxBindingBytes {
            guard cap >= 256, cap % 256 == 0 else {
                throw VulkanError.invalidArgument("maximum binding size \(cap) (VKPROBE_MAX_BINDING): expected a multiple of 256 bytes, at least 256")
            }
            guard cap >= 2 * caps.minStorageBufferOffsetAlignment else {
                throw VulkanError.invalidArgument("maximum binding size \(cap) (VKPROBE_MAX_BINDING) on \(caps.name): at least \(2 * caps.minStorageBufferOffsetAlignment) bytes, twice its minStorageBufferOffsetAlignment of \(caps.minStorageBufferOffsetAlignment) (a binding starts that far before its data)")
            }
            caps.maxStorageBufferRange = min(caps.maxStorageBufferRange, cap)
        }
        capabilities = caps
        let physical = instance.physicalHandles[index]
        self.physical = physical
        guard let family = caps.computeQueueFamily else { throw VulkanError.noDevice("\(caps.name) has no compute queue") }
        queueFamily = UInt32(family)

        var extensions: [String] = []
        if caps.cooperativeMatrix { extensions.append("VK_KHR_cooperative_matrix") }
        if caps.extensions.contains("VK_KHR_portability_subset") { extensions.append("VK_KHR_portability_subset") }
        let extStrings = CStringArray(extensions)

        var f11 = VkPhysicalDeviceVulkan11Features()
        f11.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES
        f11.storageBuffer16BitAccess = VkBool32(caps.storageBuffer16BitAccess ? 1 : 0)
        var f12 = VkPhysicalDeviceVulkan12Features()
        f12.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES
        f12.shaderFloat16 = VkBool32(caps.shaderFloat16 ? 1 : 0)
        // Only the cooperative-matrix kernels need the memory model; enabling it elsewhere changes
        // what atomics' default (device) scope requires.
        f12.vulkanMemoryModel = VkBool32(caps.vulkanMemoryModel && caps.cooperativeMatrix ? 1 : 0)
        f12.vulkanMemoryModelDeviceScope = VkBool32(caps.vulkanMemoryModel && caps.cooperativeMatrix && caps.vulkanMemoryModelDeviceScope ? 1 : 0)
        f12.shaderInt8 = VkBool32(caps.shaderInt8 ? 1 : 0)
        f12.storageBuffer8BitAccess = VkBool32(caps.storageBuffer8BitAccess ? 1 : 0)
        var f13 = VkPhysicalDeviceVulkan13Features()
        f13.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES
        f13.subgroupSizeControl = VkBool32(caps.subgroupSizeControl ? 1 : 0)
        f13.computeFullSubgroups = VkBool32(caps.subgroupSizeControl ? 1 : 0)
        var fcm = VkPhysicalDeviceCooperativeMatrixFeaturesKHR()
        fcm.sType = VkStructureType(rawValue: 1_000_506_000)
        fcm.cooperativeMatrix = VkBool32(caps.cooperativeMatrix ? 1 : 0)
        let has13 = instance.apiVersion >= makeAPIVersion(1, 3, 0) && caps.apiVersion.compare("1.3", options: .numeric) != .orderedAscending

        var priority: Float = 1
        var device: VkDevice?
        let result: VkResult = withUnsafeMutablePointer(to: &fcm) { fcmPtr in
            withUnsafeMutablePointer(to: &f13) { f13Ptr in
                if caps.cooperativeMatrix { f13Ptr.pointee.pNext = UnsafeMutableRawPointer(fcmPtr) }
                return withUnsafeMutablePointer(to: &f12) { f12Ptr in
                    if has13 { f12Ptr.pointee.pNext = UnsafeMutableRawPointer(f13Ptr) }
                    else if caps.cooperativeMatrix { f12Ptr.pointee.pNext = UnsafeMutableRawPointer(fcmPtr) }
                    return withUnsafeMutablePointer(to: &f11) { f11Ptr in
                        f11Ptr.pointee.pNext = UnsafeMutableRawPointer(f12Ptr)
                        var f2 = VkPhysicalDeviceFeatures2()
                        f2.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2
                        f2.pNext = UnsafeMutableRawPointer(f11Ptr)
                        return withUnsafeMutablePointer(to: &f2) { f2Ptr in
                            withUnsafePointer(to: &priority) { priorityPtr in
                                var queueInfo = VkDeviceQueueCreateInfo()
                                queueInfo.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO
                                queueInfo.queueFamilyIndex = UInt32(family)
                                queueInfo.queueCount = 1
                                queueInfo.pQueuePriorities = priorityPtr
                                return withUnsafePointer(to: &queueInfo) { qPtr in
                                    extStrings.withPointers { extPtr in
                                        var info = VkDeviceCreateInfo()
                                        info.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO
                                        info.pNext = UnsafeRawPointer(f2Ptr)
                                        info.queueCreateInfoCount = 1
                                        info.pQueueCreateInfos = qPtr
                                        info.enabledExtensionCount = extStrings.count
                                        info.ppEnabledExtensionNames = extPtr
                                        return VulkanInstance.lifecycle.withLock { instance.fns.createDevice(physical, &info, nil, &device) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        try check(result, "vkCreateDevice on \(caps.name)")
        guard let device else { throw VulkanError.call("vkCreateDevice", VK_ERROR_INITIALIZATION_FAILED) }
        handle = device
        do { fns = try DeviceFunctions(instance: instance.fns, device: device) } catch {
            instance.fns.getDeviceProcAddr(device, "vkDestroyDevice").map { unsafeBitCast($0, to: PFN_vkDestroyDevice.self)(device, nil) }
            throw error
        }
        var q: VkQueue?
        fns.getDeviceQueue(device, UInt32(family), 0, &q)
        queue = q!
        layouts = DescriptorLayouts(fns: fns, device: device)
        memory = MemoryAllocator(fns: fns, device: device, capabilities: caps,
                                 budget: options.memoryBudget, blockSize: options.blockSize)
        pipelines = try PipelineCache(fns: fns, device: device, capabilities: caps, shaders: shaders, layouts: layouts,
                                      directory: options.pipelineCacheDirectory, creationFeedback: has13)
        let how = options.selector.map { "chosen by --device/VKPROBE_DEVICE \"\($0)\"" } ?? "chosen by class (discrete > integrated > CPU)"
        deviceLog.debug("device \(index): \(caps.name) (\(caps.deviceType), driver \(caps.driverVersion)), \(how)\(profile.map { "; limits of profile \($0.name)" } ?? "")")
        deviceLog.debug("memory budget \(options.memoryBudget.map { "\($0) bytes (VKPROBE_MEMORY_BUDGET)" } ?? "default"); bindings up to \(caps.maxStorageBufferRange) bytes\(options.maxBindingBytes != nil ? " (VKPROBE_MAX_BINDING)" : ""); texel buffers up to \(caps.maxTexelBufferElements) elements; subgroup \(caps.subgroupSize) lanes; \(directHostAccess ? "host-visible memory used directly" : "uploads through staging buffers")")
        if let file = pipelines.fileURL {
            deviceLog.debug("pipeline cache \(file.path): \(pipelines.loadedBytes > 0 ? "\(pipelines.loadedBytes) bytes loaded" : "nothing usable there yet")")
        } else {
            deviceLog.debug("pipeline cache disabled (VKPROBE_CACHE_DIR is empty)")
        }
        deviceLog.debug("Mesa's shader cache: \(ShaderCacheKey.guardMesaCache ?? "disabled (MESA_SHADER_CACHE_DISABLE, or no folder)")")
    }

    /// Submits one command buffer (under the queue lock) signalling `fence`.
    func submit(_ commandBuffer: VkCommandBuffer, fence: VkFence) throws {
        var cb: VkCommandBuffer? = commandBuffer
        var info = VkSubmitInfo()
        info.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO
        info.commandBufferCount = 1
        try withUnsafePointer(to: &cb) { cbPtr in
            info.pCommandBuffers = cbPtr
            try queueLock.withLock { try check(fns.queueSubmit(queue, 1, &info, fence), "vkQueueSubmit") }
        }
    }

    public func waitIdle() throws {
        try queueLock.withLock { try check(fns.deviceWaitIdle(handle), "vkDeviceWaitIdle") }
    }

    deinit {
        _ = fns.deviceWaitIdle(handle)
        pipelines?.save()
        pipelines = nil
        memory = nil
        layouts.destroy()
        VulkanInstance.lifecycle.withLock { fns.destroyDevice(handle, nil) }
    }
}
