import CVulkan
import Foundation

/// Everything the kernel layer needs to know about a device, read once from the driver.
public struct DeviceCapabilities: Codable, Sendable {
    public struct MemoryHeap: Codable, Sendable {
        public var index: Int
        public var size: Int
        public var deviceLocal: Bool
    }
    public struct MemoryType: Codable, Sendable {
        public var index: Int
        public var heap: Int
        public var flags: [String]
        public var deviceLocal: Bool { flags.contains("device-local") }
        public var hostVisible: Bool { flags.contains("host-visible") }
        public var hostCoherent: Bool { flags.contains("host-coherent") }
    }
    public struct CooperativeMatrixShape: Codable, Sendable, Hashable {
        public var m: Int, n: Int, k: Int
        public var a: String, b: String, c: String, result: String
        public var scope: String
    }

    public var index: Int
    public var name: String
    public var vendorID: UInt32
    public var vendor: String
    public var deviceID: UInt32
    public var deviceType: String
    public var apiVersion: String
    public var driverVersion: String
    public var driverName: String
    public var driverInfo: String
    public var pipelineCacheUUID: String
    /// Vulkan 1.2+ and a compute queue: usable by VulkanProbe.
    public var supported: Bool
    public var computeQueueFamily: Int?

    public var subgroupSize: Int
    public var minSubgroupSize: Int
    public var maxSubgroupSize: Int
    public var maxComputeSharedMemorySize: Int
    public var maxComputeWorkGroupInvocations: Int
    public var maxComputeWorkGroupSize: [Int]
    public var maxComputeWorkGroupCount: [Int]
    public var maxStorageBufferRange: Int
    public var maxPushConstantsSize: Int
    public var minStorageBufferOffsetAlignment: Int
    public var maxMemoryAllocationSize: Int
    public var maxMemoryAllocationCount: Int
    public var maxPerStageDescriptorStorageBuffers: Int
    /// Uniform texel buffers (read-only operands fetched through the texture path, which CPU
    /// drivers compile to plain vector gathers instead of per-lane loops).
    public var maxTexelBufferElements = 0
    public var minTexelBufferOffsetAlignment = 1

    public var shaderFloat16: Bool
    /// The Vulkan memory model (cooperative-matrix kernels use `gl_ScopeSubgroup`).
    public var vulkanMemoryModel = false
    public var vulkanMemoryModelDeviceScope = false
    public var shaderInt8: Bool
    public var storageBuffer16BitAccess: Bool
    public var storageBuffer8BitAccess: Bool
    public var subgroupSizeControl: Bool
    /// Subgroup arithmetic (subgroupAdd, subgroupMax, ...) in compute shaders.
    public var subgroupArithmetic: Bool
    public var cooperativeMatrix: Bool
    public var cooperativeMatrixShapes: [CooperativeMatrixShape]

    public var memoryHeaps: [MemoryHeap]
    public var memoryTypes: [MemoryType]

    public var timestamps: Bool
    public var timestampPeriodNs: Double
    public var timestampValidBits: Int

    public var extensions: [String]

    /// Discrete > integrated > virtual > CPU > other, for the default choice.
    var typeRank: Int {
        switch deviceType {
        case "discrete-gpu": return 4
        case "integrated-gpu": return 3
        case "virtual-gpu": return 2
        case "cpu": return 1
        default: return 0
        }
    }
    var deviceLocalBytes: Int { memoryHeaps.filter { $0.deviceLocal }.map { $0.size }.max() ?? 0 }
    public var isCPU: Bool { deviceType == "cpu" }
    /// Mesa's release for a Mesa driver (lavapipe, RADV, ANV report "Mesa 22.3.6 …" as their
    /// driver info), nil for others: kernel tuning follows lavapipe's code generation, which
    /// changed between releases.
    public var mesaVersion: (major: Int, minor: Int)? { Self.mesaVersion(driverInfo) }

    static func mesaVersion(_ info: String) -> (major: Int, minor: Int)? {
        guard let range = info.range(of: "Mesa ") else { return nil }
        let numbers = info[range.upperBound...].prefix { $0.isNumber || $0 == "." }.split(separator: ".").compactMap { Int($0) }
        guard numbers.count >= 2 else { return nil }
        return (numbers[0], numbers[1])
    }
    /// Device-local memory that the host can map directly (lavapipe, integrated GPUs, ReBAR).
    public var unifiedMemory: Bool { memoryTypes.contains { $0.deviceLocal && $0.hostVisible && $0.hostCoherent } }

    static func read(fns: InstanceFunctions, device: VkPhysicalDevice, index: Int) -> DeviceCapabilities {
        var props = VkPhysicalDeviceProperties()
        fns.getPhysicalDeviceProperties(device, &props)
        let api = props.apiVersion
        let exts = deviceExtensions(fns, device)

        // Queue family with compute (prefer a compute-only one: async compute queues on GPUs).
        var qCount: UInt32 = 0
        fns.getPhysicalDeviceQueueFamilyProperties(device, &qCount, nil)
        var families = [VkQueueFamilyProperties](repeating: VkQueueFamilyProperties(), count: Int(qCount))
        fns.getPhysicalDeviceQueueFamilyProperties(device, &qCount, &families)
        let computeBit = VK_QUEUE_COMPUTE_BIT.rawValue, graphicsBit = VK_QUEUE_GRAPHICS_BIT.rawValue
        let computeFamilies = families.indices.filter { families[$0].queueFlags & computeBit != 0 }
        let family = computeFamilies.first { families[$0].queueFlags & graphicsBit == 0 && families[$0].timestampValidBits > 0 }
            ?? computeFamilies.first
        let supported = api >= makeAPIVersion(1, 2, 0) && family != nil

        var caps = DeviceCapabilities(
            index: index, name: cString(tuple: props.deviceName), vendorID: props.vendorID,
            vendor: vendorName(props.vendorID), deviceID: props.deviceID,
            deviceType: deviceTypeName(props.deviceType), apiVersion: apiVersionString(api),
            driverVersion: driverVersionString(props.driverVersion, vendor: props.vendorID),
            driverName: "", driverInfo: "",
            pipelineCacheUUID: withUnsafeBytes(of: props.pipelineCacheUUID) { $0.map { String(format: "%02x", $0) }.joined() },
            supported: supported, computeQueueFamily: family,
            subgroupSize: 1, minSubgroupSize: 1, maxSubgroupSize: 1,
            maxComputeSharedMemorySize: Int(props.limits.maxComputeSharedMemorySize),
            maxComputeWorkGroupInvocations: Int(props.limits.maxComputeWorkGroupInvocations),
            maxComputeWorkGroupSize: withUnsafeBytes(of: props.limits.maxComputeWorkGroupSize) { $0.bindMemory(to: UInt32.self).map { Int($0) } },
            maxComputeWorkGroupCount: withUnsafeBytes(of: props.limits.maxComputeWorkGroupCount) { $0.bindMemory(to: UInt32.self).map { Int($0) } },
            maxStorageBufferRange: Int(props.limits.maxStorageBufferRange),
            maxPushConstantsSize: Int(props.limits.maxPushConstantsSize),
            minStorageBufferOffsetAlignment: Int(props.limits.minStorageBufferOffsetAlignment),
            maxMemoryAllocationSize: Int.max, maxMemoryAllocationCount: Int(props.limits.maxMemoryAllocationCount),
            maxPerStageDescriptorStorageBuffers: Int(props.limits.maxPerStageDescriptorStorageBuffers),
            shaderFloat16: false, shaderInt8: false, storageBuffer16BitAccess: false, storageBuffer8BitAccess: false,
            subgroupSizeControl: false, subgroupArithmetic: false, cooperativeMatrix: false, cooperativeMatrixShapes: [],
            memoryHeaps: [], memoryTypes: [],
            timestamps: false, timestampPeriodNs: Double(props.limits.timestampPeriod), timestampValidBits: 0,
            extensions: exts)
        caps.maxTexelBufferElements = Int(props.limits.maxTexelBufferElements)
        caps.minTexelBufferOffsetAlignment = max(1, Int(props.limits.minTexelBufferOffsetAlignment))
        if let family {
            caps.timestampValidBits = Int(families[family].timestampValidBits)
            caps.timestamps = caps.timestampValidBits > 0 && props.limits.timestampPeriod > 0
        }

        var mem = VkPhysicalDeviceMemoryProperties()
        fns.getPhysicalDeviceMemoryProperties(device, &mem)
        withUnsafeBytes(of: mem.memoryHeaps) { raw in
            let heaps = raw.bindMemory(to: VkMemoryHeap.self)
            caps.memoryHeaps = (0..<Int(mem.memoryHeapCount)).map {
                MemoryHeap(index: $0, size: Int(heaps[$0].size), deviceLocal: heaps[$0].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT.rawValue != 0)
            }
        }
        withUnsafeBytes(of: mem.memoryTypes) { raw in
            let types = raw.bindMemory(to: VkMemoryType.self)
            caps.memoryTypes = (0..<Int(mem.memoryTypeCount)).map {
                MemoryType(index: $0, heap: Int(types[$0].heapIndex), flags: memoryFlagNames(types[$0].propertyFlags))
            }
        }
        guard api >= makeAPIVersion(1, 2, 0) else { return caps }

        // Vulkan 1.1/1.2 (and 1.3 subgroup-size-control) properties.
        var p11 = VkPhysicalDeviceVulkan11Properties()
        p11.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_PROPERTIES
        var p12 = VkPhysicalDeviceVulkan12Properties()
        p12.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_PROPERTIES
        var sizeControl = VkPhysicalDeviceSubgroupSizeControlProperties()
        sizeControl.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES
        let hasSizeControl = api >= makeAPIVersion(1, 3, 0) || exts.contains("VK_EXT_subgroup_size_control")
        withUnsafeMutablePointer(to: &sizeControl) { scPtr in
            withUnsafeMutablePointer(to: &p12) { p12Ptr in
                if hasSizeControl { p12Ptr.pointee.pNext = UnsafeMutableRawPointer(scPtr) }
                withUnsafeMutablePointer(to: &p11) { p11Ptr in
                    p11Ptr.pointee.pNext = UnsafeMutableRawPointer(p12Ptr)
                    var p2 = VkPhysicalDeviceProperties2()
                    p2.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2
                    p2.pNext = UnsafeMutableRawPointer(p11Ptr)
                    fns.getPhysicalDeviceProperties2(device, &p2)
                }
            }
        }
        caps.subgroupSize = Int(p11.subgroupSize)
        caps.subgroupArithmetic = p11.subgroupSupportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT.rawValue != 0
            && p11.subgroupSupportedStages & VK_SHADER_STAGE_COMPUTE_BIT.rawValue != 0
        caps.minSubgroupSize = hasSizeControl && sizeControl.minSubgroupSize > 0 ? Int(sizeControl.minSubgroupSize) : Int(p11.subgroupSize)
        caps.maxSubgroupSize = hasSizeControl && sizeControl.maxSubgroupSize > 0 ? Int(sizeControl.maxSubgroupSize) : Int(p11.subgroupSize)
        caps.maxMemoryAllocationSize = Int(p11.maxMemoryAllocationSize)
        caps.driverName = cString(tuple: p12.driverName)
        caps.driverInfo = cString(tuple: p12.driverInfo)

        // Features.
        var f11 = VkPhysicalDeviceVulkan11Features()
        f11.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES
        var f12 = VkPhysicalDeviceVulkan12Features()
        f12.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES
        var f13 = VkPhysicalDeviceVulkan13Features()
        f13.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES
        var fcm = VkPhysicalDeviceCooperativeMatrixFeaturesKHR()
        fcm.sType = VkStructureType(rawValue: 1_000_506_000)
        let hasCoopExt = exts.contains("VK_KHR_cooperative_matrix")
        let has13 = api >= makeAPIVersion(1, 3, 0)
        withUnsafeMutablePointer(to: &fcm) { fcmPtr in
            withUnsafeMutablePointer(to: &f13) { f13Ptr in
                if hasCoopExt { f13Ptr.pointee.pNext = UnsafeMutableRawPointer(fcmPtr) }
                withUnsafeMutablePointer(to: &f12) { f12Ptr in
                    if has13 { f12Ptr.pointee.pNext = UnsafeMutableRawPointer(f13Ptr) }
                    else if hasCoopExt { f12Ptr.pointee.pNext = UnsafeMutableRawPointer(fcmPtr) }
                    withUnsafeMutablePointer(to: &f11) { f11Ptr in
                        f11Ptr.pointee.pNext = UnsafeMutableRawPointer(f12Ptr)
                        var f2 = VkPhysicalDeviceFeatures2()
                        f2.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2
                        f2.pNext = UnsafeMutableRawPointer(f11Ptr)
                        fns.getPhysicalDeviceFeatures2(device, &f2)
                    }
                }
            }
        }
        caps.storageBuffer16BitAccess = f11.storageBuffer16BitAccess != 0
        caps.shaderFloat16 = f12.shaderFloat16 != 0
        caps.vulkanMemoryModel = f12.vulkanMemoryModel != 0
        caps.vulkanMemoryModelDeviceScope = f12.vulkanMemoryModelDeviceScope != 0
        caps.shaderInt8 = f12.shaderInt8 != 0
        caps.storageBuffer8BitAccess = f12.storageBuffer8BitAccess != 0
        caps.subgroupSizeControl = has13 && f13.subgroupSizeControl != 0 && f13.computeFullSubgroups != 0
        caps.cooperativeMatrix = hasCoopExt && fcm.cooperativeMatrix != 0

        if caps.cooperativeMatrix, let query = fns.getPhysicalDeviceCooperativeMatrixPropertiesKHR {
            var n: UInt32 = 0
            if query(device, &n, nil) == VK_SUCCESS, n > 0 {
                var template = VkCooperativeMatrixPropertiesKHR()
                template.sType = VkStructureType(rawValue: 1_000_506_001)
                var shapes = [VkCooperativeMatrixPropertiesKHR](repeating: template, count: Int(n))
                if query(device, &n, &shapes) == VK_SUCCESS {
                    caps.cooperativeMatrixShapes = shapes.prefix(Int(n)).map {
                        CooperativeMatrixShape(m: Int($0.MSize), n: Int($0.NSize), k: Int($0.KSize),
                                               a: componentName($0.AType), b: componentName($0.BType),
                                               c: componentName($0.CType), result: componentName($0.ResultType),
                                               scope: $0.scope == VK_SCOPE_SUBGROUP_KHR ? "subgroup" : "\($0.scope.rawValue)")
                    }
                }
            }
        }
        return caps
    }
}

private func deviceExtensions(_ fns: InstanceFunctions, _ device: VkPhysicalDevice) -> [String] {
    var n: UInt32 = 0
    guard fns.enumerateDeviceExtensionProperties(device, nil, &n, nil) == VK_SUCCESS, n > 0 else { return [] }
    var props = [VkExtensionProperties](repeating: VkExtensionProperties(), count: Int(n))
    guard fns.enumerateDeviceExtensionProperties(device, nil, &n, &props) == VK_SUCCESS else { return [] }
    return props.prefix(Int(n)).map { cString(tuple: $0.extensionName) }.sorted()
}

private func vendorName(_ id: UInt32) -> String {
    switch id {
    case 0x10DE: return "NVIDIA"
    case 0x1002: return "AMD"
    case 0x8086: return "Intel"
    case 0x13B5: return "ARM"
    case 0x5143: return "Qualcomm"
    case 0x106B: return "Apple"
    case 0x10005: return "Mesa"
    default: return String(format: "0x%04x", id)
    }
}

private func deviceTypeName(_ t: VkPhysicalDeviceType) -> String {
    switch t {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete-gpu"
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated-gpu"
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual-gpu"
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "cpu"
    default: return "other"
    }
}

/// NVIDIA packs its driver version as 10.8.8.6 bits; everyone else follows the API-version layout.
private func driverVersionString(_ v: UInt32, vendor: UInt32) -> String {
    if vendor == 0x10DE { return "\((v >> 22) & 0x3FF).\((v >> 14) & 0xFF).\((v >> 6) & 0xFF)" }
    return apiVersionString(v)
}

private func memoryFlagNames(_ f: VkMemoryPropertyFlags) -> [String] {
    var names: [String] = []
    if f & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT.rawValue != 0 { names.append("device-local") }
    if f & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT.rawValue != 0 { names.append("host-visible") }
    if f & VK_MEMORY_PROPERTY_HOST_COHERENT_BIT.rawValue != 0 { names.append("host-coherent") }
    if f & VK_MEMORY_PROPERTY_HOST_CACHED_BIT.rawValue != 0 { names.append("host-cached") }
    if f & VK_MEMORY_PROPERTY_LAZILY_ALLOCATED_BIT.rawValue != 0 { names.append("lazily-allocated") }
    if f & VK_MEMORY_PROPERTY_PROTECTED_BIT.rawValue != 0 { names.append("protected") }
    return names
}

private func componentName(_ t: VkComponentTypeKHR) -> String {
    switch t {
    case VK_COMPONENT_TYPE_FLOAT16_KHR: return "f16"
    case VK_COMPONENT_TYPE_FLOAT32_KHR: return "f32"
    case VK_COMPONENT_TYPE_FLOAT64_KHR: return "f64"
    case VK_COMPONENT_TYPE_SINT8_KHR: return "i8"
    case VK_COMPONENT_TYPE_SINT32_KHR: return "i32"
    case VK_COMPONENT_TYPE_UINT8_KHR: return "u8"
    case VK_COMPONENT_TYPE_UINT32_KHR: return "u32"
    default: return "type\(t.rawValue)"
    }
}
