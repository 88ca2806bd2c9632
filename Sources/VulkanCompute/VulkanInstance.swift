import CVulkan
import Foundation

/// How to create the instance. Validation is on when asked for or when `VKPROBE_VALIDATION=1`.
public struct InstanceOptions: Sendable {
    public var validation: Bool
    /// Also enable the layer's synchronization validation (catches missing barriers).
    public var synchronizationValidation: Bool = true
    /// Print validation messages to stderr as they arrive.
    public var echoValidation: Bool = false
    public var applicationName = "vkprobe"

    public init(validation: Bool? = nil, echoValidation: Bool = false) {
        self.validation = validation ?? (ProcessInfo.processInfo.environment["VKPROBE_VALIDATION"] == "1")
        self.echoValidation = echoValidation
    }
}

/// A Vulkan instance and the physical devices it sees, with their capabilities read once.
public final class VulkanInstance: @unchecked Sendable {
    public static let validationLayerName = "VK_LAYER_KHRONOS_validation"

    public let library: VulkanLibrary
    let handle: VkInstance
    let fns: InstanceFunctions
    /// Non-nil when validation is on.
    public let validationLog: ValidationLog?
    private var messenger: VkDebugUtilsMessengerEXT?
    public let apiVersion: UInt32
    let physicalHandles: [VkPhysicalDevice]
    /// Every device the loader reports, in its order; `capabilities[i].index == i`.
    public let devices: [DeviceCapabilities]

    public init(options: InstanceOptions = InstanceOptions(), library: VulkanLibrary? = nil) throws {
        let lib = try library ?? VulkanLibrary.shared()
        self.library = lib
        let loaderVersion = lib.instanceVersion()
        guard loaderVersion >= makeAPIVersion(1, 1, 0) else {
            throw VulkanError.noDevice("the Vulkan loader is version \(apiVersionString(loaderVersion)); 1.2 or newer is needed")
        }
        let apiVersion = min(loaderVersion, makeAPIVersion(1, 3, 0))
        self.apiVersion = apiVersion

        var layers: [String] = []
        var extensions: [String] = []
        let available = lib.instanceExtensionNames()
        if options.validation {
            guard lib.layerNames().contains(Self.validationLayerName) else {
                throw VulkanError.invalidArgument("Validation was requested (VKPROBE_VALIDATION=1 or --validation) but \(Self.validationLayerName) is not installed: `sudo apt-get install vulkan-validationlayers`")
            }
            layers.append(Self.validationLayerName)
            extensions.append("VK_EXT_debug_utils")
            if options.synchronizationValidation { extensions.append("VK_EXT_validation_features") }
        }
        if available.contains("VK_KHR_portability_enumeration") { extensions.append("VK_KHR_portability_enumeration") }
        let log = options.validation ? ValidationLog(echo: options.echoValidation) : nil
        validationLog = log

        let layerStrings = CStringArray(layers)
        let extStrings = CStringArray(extensions)
        let appName = CStringArray([options.applicationName])
        var messengerInfo = Self.messengerInfo(log)
        var enabledFeatures: [VkValidationFeatureEnableEXT] = [VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT]
        var validationFeatures = VkValidationFeaturesEXT()
        validationFeatures.sType = VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT
        validationFeatures.enabledValidationFeatureCount = 1

        var instance: VkInstance?
        let result: VkResult = try withUnsafeMutablePointer(to: &messengerInfo) { messengerPtr in
            try enabledFeatures.withUnsafeMutableBufferPointer { featurePtr in
                validationFeatures.pEnabledValidationFeatures = UnsafePointer(featurePtr.baseAddress)
                return try withUnsafeMutablePointer(to: &validationFeatures) { vfPtr in
                    if options.validation && options.synchronizationValidation {
                        messengerPtr.pointee.pNext = UnsafeRawPointer(vfPtr)
                    }
                    return try appName.withPointers { namePtr in
                        var app = VkApplicationInfo()
                        app.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO
                        app.pApplicationName = namePtr?.pointee
                        app.applicationVersion = 1
                        app.pEngineName = namePtr?.pointee
                        app.apiVersion = apiVersion
                        return try withUnsafePointer(to: &app) { appPtr in
                            try layerStrings.withPointers { layerPtr in
                                try extStrings.withPointers { extPtr in
                                    var info = VkInstanceCreateInfo()
                                    info.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO
                                    info.pApplicationInfo = appPtr
                                    info.enabledLayerCount = layerStrings.count
                                    info.ppEnabledLayerNames = layerPtr
                                    info.enabledExtensionCount = extStrings.count
                                    info.ppEnabledExtensionNames = extPtr
                                    if extensions.contains("VK_KHR_portability_enumeration") {
                                        info.flags = VkInstanceCreateFlags(VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR.rawValue)
                                    }
                                    if log != nil { info.pNext = UnsafeRawPointer(messengerPtr) }
                                    let create: PFN_vkCreateInstance = try lib.load("vkCreateInstance")
                                    return Self.lifecycle.withLock { create(&info, nil, &instance) }
                                }
                            }
                        }
                    }
                }
            }
        }
        if result == VK_ERROR_INCOMPATIBLE_DRIVER {
            throw VulkanError.noDevice("vkCreateInstance: no compatible driver")
        }
        try check(result, "vkCreateInstance")
        guard let instance else { throw VulkanError.call("vkCreateInstance", VK_ERROR_INITIALIZATION_FAILED) }
        handle = instance
        let fns: InstanceFunctions
        do { fns = try InstanceFunctions(library: lib, instance: instance) } catch {
            if let destroy: PFN_vkDestroyInstance = lib.loadOptional("vkDestroyInstance", instance: instance) { destroy(instance, nil) }
            throw error
        }
        self.fns = fns
        if log != nil, let createMessenger = fns.createDebugUtilsMessengerEXT {
            var m: VkDebugUtilsMessengerEXT?
            messengerInfo.pNext = nil   // the validation-features chain belongs to instance creation only
            try check(Self.lifecycle.withLock { createMessenger(instance, &messengerInfo, nil, &m) }, "vkCreateDebugUtilsMessengerEXT")
            messenger = m
        }

        var count: UInt32 = 0
        try check(fns.enumeratePhysicalDevices(instance, &count, nil), "vkEnumeratePhysicalDevices")
        var handles = [VkPhysicalDevice?](repeating: nil, count: Int(count))
        if count > 0 { try check(fns.enumeratePhysicalDevices(instance, &count, &handles), "vkEnumeratePhysicalDevices") }
        physicalHandles = handles.prefix(Int(count)).compactMap { $0 }
        devices = physicalHandles.enumerated().map { DeviceCapabilities.read(fns: fns, device: $0.element, index: $0.offset) }
    }

    private static func messengerInfo(_ log: ValidationLog?) -> VkDebugUtilsMessengerCreateInfoEXT {
        var info = VkDebugUtilsMessengerCreateInfoEXT()
        info.sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT
        info.messageSeverity = VkDebugUtilsMessageSeverityFlagsEXT(
            VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT.rawValue | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT.rawValue)
        info.messageType = VkDebugUtilsMessageTypeFlagsEXT(
            VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT.rawValue | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT.rawValue
                | VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT.rawValue)
        info.pfnUserCallback = debugUtilsCallback
        if let log { info.pUserData = Unmanaged.passUnretained(log).toOpaque() }
        return info
    }

    /// Picks a device: by index, by case-insensitive name substring, or (nil) the best one:
    /// discrete > integrated > virtual > CPU, then the larger device-local heap.
    public func chooseDevice(_ selector: String? = nil) throws -> Int {
        let usable = devices.filter { $0.supported }
        guard !devices.isEmpty else { throw VulkanError.noDevice("the Vulkan loader reports no physical devices") }
        let names = devices.map { $0.name }
        if let selector, !selector.isEmpty {
            if let i = Int(selector) {
                guard devices.indices.contains(i) else { throw VulkanError.deviceNotFound(selector: selector, available: names) }
                guard devices[i].supported else {
                    throw VulkanError.invalidArgument("Device [\(i)] \(devices[i].name) supports Vulkan \(devices[i].apiVersion); VulkanProbe needs 1.2 or newer with a compute queue")
                }
                return i
            }
            let matches = usable.filter { $0.name.lowercased().contains(selector.lowercased()) }
            guard let first = matches.first else { throw VulkanError.deviceNotFound(selector: selector, available: names) }
            return first.index
        }
        guard let best = usable.max(by: { a, b in
            (a.typeRank, a.deviceLocalBytes, -a.index) < (b.typeRank, b.deviceLocalBytes, -b.index)
        }) else { throw VulkanError.noDevice("no device supports Vulkan 1.2 with a compute queue") }
        return best.index
    }

    /// Serialises creating and destroying instances and devices across the process. The spec
    /// allows them concurrently, but a test run (many devices created and dropped in parallel,
    /// under the validation layer of Debian 12) once crashed inside a read lock the layer took
    /// while another thread was creating an instance; they are rare and cheap next to a device's
    /// life, so one lock costs nothing.
    static let lifecycle = NSLock()

    deinit {
        Self.lifecycle.withLock {
            if let messenger, let destroy = fns.destroyDebugUtilsMessengerEXT { destroy(handle, messenger, nil) }
            fns.destroyInstance(handle, nil)
        }
    }
}
