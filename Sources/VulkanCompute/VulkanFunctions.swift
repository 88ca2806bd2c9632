import CVulkan

// Entry-point tables, loaded once per instance/device through the loader (volk-style).

struct InstanceFunctions {
    let destroyInstance: PFN_vkDestroyInstance
    let enumeratePhysicalDevices: PFN_vkEnumeratePhysicalDevices
    let getPhysicalDeviceProperties: PFN_vkGetPhysicalDeviceProperties
    let getPhysicalDeviceProperties2: PFN_vkGetPhysicalDeviceProperties2
    let getPhysicalDeviceFeatures2: PFN_vkGetPhysicalDeviceFeatures2
    let getPhysicalDeviceMemoryProperties: PFN_vkGetPhysicalDeviceMemoryProperties
    let getPhysicalDeviceQueueFamilyProperties: PFN_vkGetPhysicalDeviceQueueFamilyProperties
    let enumerateDeviceExtensionProperties: PFN_vkEnumerateDeviceExtensionProperties
    let createDevice: PFN_vkCreateDevice
    let getDeviceProcAddr: PFN_vkGetDeviceProcAddr
    let createDebugUtilsMessengerEXT: PFN_vkCreateDebugUtilsMessengerEXT?
    let destroyDebugUtilsMessengerEXT: PFN_vkDestroyDebugUtilsMessengerEXT?
    let getPhysicalDeviceCooperativeMatrixPropertiesKHR: PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR?

    init(library: VulkanLibrary, instance: VkInstance) throws {
        destroyInstance = try library.load("vkDestroyInstance", instance: instance)
        enumeratePhysicalDevices = try library.load("vkEnumeratePhysicalDevices", instance: instance)
        getPhysicalDeviceProperties = try library.load("vkGetPhysicalDeviceProperties", instance: instance)
        getPhysicalDeviceProperties2 = try library.load("vkGetPhysicalDeviceProperties2", instance: instance)
        getPhysicalDeviceFeatures2 = try library.load("vkGetPhysicalDeviceFeatures2", instance: instance)
        getPhysicalDeviceMemoryProperties = try library.load("vkGetPhysicalDeviceMemoryProperties", instance: instance)
        getPhysicalDeviceQueueFamilyProperties = try library.load("vkGetPhysicalDeviceQueueFamilyProperties", instance: instance)
        enumerateDeviceExtensionProperties = try library.load("vkEnumerateDeviceExtensionProperties", instance: instance)
        createDevice = try library.load("vkCreateDevice", instance: instance)
        getDeviceProcAddr = try library.load("vkGetDeviceProcAddr", instance: instance)
        createDebugUtilsMessengerEXT = library.loadOptional("vkCreateDebugUtilsMessengerEXT", instance: instance)
        destroyDebugUtilsMessengerEXT = library.loadOptional("vkDestroyDebugUtilsMessengerEXT", instance: instance)
        getPhysicalDeviceCooperativeMatrixPropertiesKHR = library.loadOptional("vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR", instance: instance)
    }
}

struct DeviceFunctions {
    let destroyDevice: PFN_vkDestroyDevice
    let getDeviceQueue: PFN_vkGetDeviceQueue
    let deviceWaitIdle: PFN_vkDeviceWaitIdle
    let queueSubmit: PFN_vkQueueSubmit
    let queueWaitIdle: PFN_vkQueueWaitIdle
    let allocateMemory: PFN_vkAllocateMemory
    let freeMemory: PFN_vkFreeMemory
    let mapMemory: PFN_vkMapMemory
    let unmapMemory: PFN_vkUnmapMemory
    let createBuffer: PFN_vkCreateBuffer
    let createBufferView: PFN_vkCreateBufferView
    let destroyBufferView: PFN_vkDestroyBufferView
    let destroyBuffer: PFN_vkDestroyBuffer
    let getBufferMemoryRequirements: PFN_vkGetBufferMemoryRequirements
    let bindBufferMemory: PFN_vkBindBufferMemory
    let createShaderModule: PFN_vkCreateShaderModule
    let destroyShaderModule: PFN_vkDestroyShaderModule
    let createPipelineCache: PFN_vkCreatePipelineCache
    let getPipelineCacheData: PFN_vkGetPipelineCacheData
    let destroyPipelineCache: PFN_vkDestroyPipelineCache
    let createDescriptorSetLayout: PFN_vkCreateDescriptorSetLayout
    let destroyDescriptorSetLayout: PFN_vkDestroyDescriptorSetLayout
    let createPipelineLayout: PFN_vkCreatePipelineLayout
    let destroyPipelineLayout: PFN_vkDestroyPipelineLayout
    let createComputePipelines: PFN_vkCreateComputePipelines
    let destroyPipeline: PFN_vkDestroyPipeline
    let createDescriptorPool: PFN_vkCreateDescriptorPool
    let destroyDescriptorPool: PFN_vkDestroyDescriptorPool
    let resetDescriptorPool: PFN_vkResetDescriptorPool
    let allocateDescriptorSets: PFN_vkAllocateDescriptorSets
    let updateDescriptorSets: PFN_vkUpdateDescriptorSets
    let createCommandPool: PFN_vkCreateCommandPool
    let destroyCommandPool: PFN_vkDestroyCommandPool
    let resetCommandPool: PFN_vkResetCommandPool
    let allocateCommandBuffers: PFN_vkAllocateCommandBuffers
    let freeCommandBuffers: PFN_vkFreeCommandBuffers
    let beginCommandBuffer: PFN_vkBeginCommandBuffer
    let endCommandBuffer: PFN_vkEndCommandBuffer
    let cmdBindPipeline: PFN_vkCmdBindPipeline
    let cmdBindDescriptorSets: PFN_vkCmdBindDescriptorSets
    let cmdPushConstants: PFN_vkCmdPushConstants
    let cmdDispatch: PFN_vkCmdDispatch
    let cmdPipelineBarrier: PFN_vkCmdPipelineBarrier
    let cmdCopyBuffer: PFN_vkCmdCopyBuffer
    let cmdFillBuffer: PFN_vkCmdFillBuffer
    let cmdWriteTimestamp: PFN_vkCmdWriteTimestamp
    let cmdResetQueryPool: PFN_vkCmdResetQueryPool
    let createQueryPool: PFN_vkCreateQueryPool
    let destroyQueryPool: PFN_vkDestroyQueryPool
    let getQueryPoolResults: PFN_vkGetQueryPoolResults
    let createFence: PFN_vkCreateFence
    let destroyFence: PFN_vkDestroyFence
    let resetFences: PFN_vkResetFences
    let waitForFences: PFN_vkWaitForFences
    let getFenceStatus: PFN_vkGetFenceStatus

    init(instance: InstanceFunctions, device: VkDevice) throws {
        func load<F>(_ name: String) throws -> F {
            guard let p = instance.getDeviceProcAddr(device, name) else { throw VulkanError.missingEntryPoint(name) }
            return unsafeBitCast(p, to: F.self)
        }
        destroyDevice = try load("vkDestroyDevice")
        getDeviceQueue = try load("vkGetDeviceQueue")
        deviceWaitIdle = try load("vkDeviceWaitIdle")
        queueSubmit = try load("vkQueueSubmit")
        queueWaitIdle = try load("vkQueueWaitIdle")
        allocateMemory = try load("vkAllocateMemory")
        freeMemory = try load("vkFreeMemory")
        mapMemory = try load("vkMapMemory")
        unmapMemory = try load("vkUnmapMemory")
        createBuffer = try load("vkCreateBuffer")
        createBufferView = try load("vkCreateBufferView")
        destroyBufferView = try load("vkDestroyBufferView")
        destroyBuffer = try load("vkDestroyBuffer")
        getBufferMemoryRequirements = try load("vkGetBufferMemoryRequirements")
        bindBufferMemory = try load("vkBindBufferMemory")
        createShaderModule = try load("vkCreateShaderModule")
        destroyShaderModule = try load("vkDestroyShaderModule")
        createPipelineCache = try load("vkCreatePipelineCache")
        getPipelineCacheData = try load("vkGetPipelineCacheData")
        destroyPipelineCache = try load("vkDestroyPipelineCache")
        createDescriptorSetLayout = try load("vkCreateDescriptorSetLayout")
        destroyDescriptorSetLayout = try load("vkDestroyDescriptorSetLayout")
        createPipelineLayout = try load("vkCreatePipelineLayout")
        destroyPipelineLayout = try load("vkDestroyPipelineLayout")
        createComputePipelines = try load("vkCreateComputePipelines")
        destroyPipeline = try load("vkDestroyPipeline")
        createDescriptorPool = try load("vkCreateDescriptorPool")
        destroyDescriptorPool = try load("vkDestroyDescriptorPool")
        resetDescriptorPool = try load("vkResetDescriptorPool")
        allocateDescriptorSets = try load("vkAllocateDescriptorSets")
        updateDescriptorSets = try load("vkUpdateDescriptorSets")
        createCommandPool = try load("vkCreateCommandPool")
        destroyCommandPool = try load("vkDestroyCommandPool")
        resetCommandPool = try load("vkResetCommandPool")
        allocateCommandBuffers = try load("vkAllocateCommandBuffers")
        freeCommandBuffers = try load("vkFreeCommandBuffers")
        beginCommandBuffer = try load("vkBeginCommandBuffer")
        endCommandBuffer = try load("vkEndCommandBuffer")
        cmdBindPipeline = try load("vkCmdBindPipeline")
        cmdBindDescriptorSets = try load("vkCmdBindDescriptorSets")
        cmdPushConstants = try load("vkCmdPushConstants")
        cmdDispatch = try load("vkCmdDispatch")
        cmdPipelineBarrier = try load("vkCmdPipelineBarrier")
        cmdCopyBuffer = try load("vkCmdCopyBuffer")
        cmdFillBuffer = try load("vkCmdFillBuffer")
        cmdWriteTimestamp = try load("vkCmdWriteTimestamp")
        cmdResetQueryPool = try load("vkCmdResetQueryPool")
        createQueryPool = try load("vkCreateQueryPool")
        destroyQueryPool = try load("vkDestroyQueryPool")
        getQueryPoolResults = try load("vkGetQueryPoolResults")
        createFence = try load("vkCreateFence")
        destroyFence = try load("vkDestroyFence")
        resetFences = try load("vkResetFences")
        waitForFences = try load("vkWaitForFences")
        getFenceStatus = try load("vkGetFenceStatus")
    }
}
