import CVulkan
import Foundation
import Logging

/// Identifies one compute pipeline: a SPIR-V module, its binding count (storage buffers 0..n-1 in
/// set 0), push-constant size, and specialization constants (constant_id i = specialization[i]).
public struct KernelDescriptor: Hashable, Sendable, CustomStringConvertible {
    public var shader: String
    public var bindings: Int
    public var pushConstantBytes: Int
    public var specialization: [UInt32]
    /// Bindings declared as uniform texel buffers (`textureBuffer`); the rest are storage buffers.
    public var texelBindings: [Int]

    public init(shader: String, bindings: Int, pushConstantBytes: Int = 0, specialization: [UInt32] = [], texelBindings: [Int] = []) {
        self.shader = shader; self.bindings = bindings
        self.pushConstantBytes = pushConstantBytes; self.specialization = specialization
        self.texelBindings = texelBindings
    }

    public var description: String {
        "\(shader)[\(bindings) bindings, \(pushConstantBytes) B push, spec \(specialization)]"
    }
}

/// A created pipeline. Valid while its device lives (streams keep the device alive).
public struct Kernel: @unchecked Sendable {
    public let descriptor: KernelDescriptor
    let pipeline: VkPipeline
    let layout: VkPipelineLayout
    let setLayout: VkDescriptorSetLayout
}

/// Pipelines created once per descriptor and kept; a VkPipelineCache persisted on disk per device
/// and driver version so later runs skip shader compilation.
public final class PipelineCache: @unchecked Sendable {
    let fns: DeviceFunctions
    let device: VkDevice
    let caps: DeviceCapabilities
    let shaders: ShaderLibrary
    let layouts: DescriptorLayouts
    let vkCache: VkPipelineCache
    let creationFeedback: Bool
    private let lock = NSLock()
    private var kernels: [KernelDescriptor: Kernel] = [:]
    private var created = 0
    /// The file this device's cache is stored in (nil when disabled).
    public let fileURL: URL?
    /// Bytes of cache data loaded from disk at start-up.
    public let loadedBytes: Int
    /// Pipelines the driver reported as found in the VkPipelineCache (VK 1.3 creation feedback).
    public private(set) var driverCacheHits = 0
    public var pipelineCount: Int { lock.withLock { kernels.count } }

    init(fns: DeviceFunctions, device: VkDevice, capabilities caps: DeviceCapabilities, shaders: ShaderLibrary,
         layouts: DescriptorLayouts, directory: URL?, creationFeedback: Bool) throws {
        self.fns = fns; self.device = device; self.caps = caps; self.shaders = shaders
        self.layouts = layouts; self.creationFeedback = creationFeedback
        // The code-generation key too: lavapipe's pipelineCacheUUID is the same at every vector width.
        let name = String(format: "pipelines-%04x-%04x-%@-%@-%@.bin", caps.vendorID, caps.deviceID, caps.driverVersion, caps.pipelineCacheUUID,
                          ShaderCacheKey.current)
            .replacingOccurrences(of: "/", with: "_")
        fileURL = directory?.appendingPathComponent(name)
        var initial = Data()
        if let fileURL, let data = try? Data(contentsOf: fileURL), Self.headerMatches(data, caps) { initial = data }
        loadedBytes = initial.count
        var info = VkPipelineCacheCreateInfo()
        info.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO
        var cache: VkPipelineCache?
        try initial.withUnsafeBytes { raw in
            info.initialDataSize = raw.count
            info.pInitialData = raw.count > 0 ? raw.baseAddress : nil
            try check(fns.createPipelineCache(device, &info, nil, &cache), "vkCreatePipelineCache")
        }
        vkCache = cache!
    }

    /// Checks the VkPipelineCacheHeaderVersionOne against this device so a foreign file is ignored.
    static func headerMatches(_ data: Data, _ caps: DeviceCapabilities) -> Bool {
        guard data.count >= 32 else { return false }
        let words = data.prefix(16).withUnsafeBytes { raw in (0..<4).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self) } }
        let uuid = data[data.startIndex + 16 ..< data.startIndex + 32].map { String(format: "%02x", $0) }.joined()
        return words[0] >= 32 && words[1] == 1 && words[2] == caps.vendorID && words[3] == caps.deviceID && uuid == caps.pipelineCacheUUID
    }

    /// The pipeline for `descriptor`, created on first request.
    public func kernel(_ d: KernelDescriptor) throws -> Kernel {
        if let k = lock.withLock({ kernels[d] }) { return k }
        guard d.bindings >= 1, d.bindings <= min(16, caps.maxPerStageDescriptorStorageBuffers) else {
            throw VulkanError.invalidArgument("\(d): binding count must be 1...\(min(16, caps.maxPerStageDescriptorStorageBuffers))")
        }
        guard d.pushConstantBytes % 4 == 0, d.pushConstantBytes <= caps.maxPushConstantsSize else {
            throw VulkanError.invalidArgument("\(d): push constants must be a multiple of 4 bytes and at most \(caps.maxPushConstantsSize) on \(caps.name)")
        }
        // Every kernel takes its workgroup width from constant_id 0 (local_size_x_id = 0, y = z = 1):
        // a size the device cannot run is refused here, naming the limit (a profile's too).
        if let local = d.specialization.first, Int(local) > min(caps.maxComputeWorkGroupInvocations, caps.maxComputeWorkGroupSize.first ?? Int.max) {
            throw VulkanError.invalidArgument("kernel \(d.shader): a workgroup of \(local) invocations exceeds \(caps.name)'s maxComputeWorkGroupInvocations of \(caps.maxComputeWorkGroupInvocations) (maxComputeWorkGroupSize.x \(caps.maxComputeWorkGroupSize.first ?? 0))")
        }
        let code = try shaders.spirv(named: d.shader)
        let missing = ShaderRequirements.missing(code, on: caps)
        guard missing.isEmpty else {
            throw VulkanError.invalidArgument("kernel \(d.shader) needs \(missing.joined(separator: " and ")), which \(caps.name) does not have; "
                + "run in fp32 (--precision fp32) or pick another device (`vkprobe devices` lists what each has)")
        }
        let (setLayout, layout) = try layouts.pipelineLayout(bindings: d.bindings, texel: d.texelBindings, pushBytes: d.pushConstantBytes)

        var module: VkShaderModule?
        try code.withUnsafeBufferPointer { words in
            var info = VkShaderModuleCreateInfo()
            info.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO
            info.codeSize = words.count * 4
            info.pCode = words.baseAddress
            try check(fns.createShaderModule(device, &info, nil, &module), "vkCreateShaderModule(\(d.shader))")
        }
        defer { fns.destroyShaderModule(device, module, nil) }

        var entries = d.specialization.indices.map {
            VkSpecializationMapEntry(constantID: UInt32($0), offset: UInt32($0 * 4), size: 4)
        }
        var values = d.specialization
        var feedback = VkPipelineCreationFeedback()
        var pipeline: VkPipeline?
        try entries.withUnsafeMutableBufferPointer { entryPtr in
            try values.withUnsafeMutableBytes { valuePtr in
                var spec = VkSpecializationInfo(mapEntryCount: UInt32(entryPtr.count), pMapEntries: entryPtr.baseAddress,
                                                dataSize: valuePtr.count, pData: valuePtr.baseAddress)
                try withUnsafeMutablePointer(to: &feedback) { fbPtr in
                    var fbInfo = VkPipelineCreationFeedbackCreateInfo()
                    fbInfo.sType = VK_STRUCTURE_TYPE_PIPELINE_CREATION_FEEDBACK_CREATE_INFO
                    fbInfo.pPipelineCreationFeedback = fbPtr
                    try withUnsafeMutablePointer(to: &fbInfo) { fbInfoPtr in
                        try withUnsafePointer(to: &spec) { specPtr in
                            let entryName = CStringArray(["main"])
                            try entryName.withPointers { namePtr in
                                var stage = VkPipelineShaderStageCreateInfo()
                                stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO
                                stage.stage = VK_SHADER_STAGE_COMPUTE_BIT
                                stage.module = module
                                stage.pName = namePtr!.pointee
                                stage.pSpecializationInfo = entryPtr.isEmpty ? nil : specPtr
                                var info = VkComputePipelineCreateInfo()
                                info.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO
                                info.pNext = creationFeedback ? UnsafeRawPointer(fbInfoPtr) : nil
                                info.stage = stage
                                info.layout = layout
                                try check(fns.createComputePipelines(device, vkCache, 1, &info, nil, &pipeline),
                                          "vkCreateComputePipelines(\(d))")
                            }
                        }
                    }
                }
            }
        }
        let kernel = Kernel(descriptor: d, pipeline: pipeline!, layout: layout, setLayout: setLayout)
        return lock.withLock {
            if let existing = kernels[d] { fns.destroyPipeline(device, pipeline, nil); return existing }
            kernels[d] = kernel
            created += 1
            let hitBit = VK_PIPELINE_CREATION_FEEDBACK_APPLICATION_PIPELINE_CACHE_HIT_BIT.rawValue
            if creationFeedback, feedback.flags & hitBit != 0 { driverCacheHits += 1 }
            return kernel
        }
    }

    /// Writes the cache to disk (atomically: temp file + rename) if pipelines were created since load.
    @discardableResult
    public func save() -> Bool {
        guard let fileURL else { return false }
        let n = lock.withLock { created }
        guard n > 0 else { return false }
        var size = 0
        guard fns.getPipelineCacheData(device, vkCache, &size, nil) == VK_SUCCESS, size > 0 else { return false }
        var data = Data(count: size)
        let ok = data.withUnsafeMutableBytes { fns.getPipelineCacheData(device, vkCache, &size, $0.baseAddress) == VK_SUCCESS }
        guard ok else { return false }
        do {
            try FileManager.default.createDirectory(at: fileURL.deletingLastPathComponent(), withIntermediateDirectories: true)
            try data.prefix(size).write(to: fileURL, options: .atomic)
            lock.withLock { created = 0 }
            deviceLog.debug("pipeline cache: \(n) new pipelines, \(size) bytes written to \(fileURL.path)")
            return true
        } catch {
            // A read-only cache directory only costs compile time next run.
            deviceLog.debug("pipeline cache not written to \(fileURL.path): \(error.localizedDescription)")
            return false
        }
    }

    deinit {
        for k in kernels.values { fns.destroyPipeline(device, k.pipeline, nil) }
        fns.destroyPipelineCache(device, vkCache, nil)
    }
}

/// One descriptor-set layout scheme for every kernel: set 0 holds storage buffers at bindings
/// 0..n-1. Layouts (and pipeline layouts per push-constant size) are created once per shape.
final class DescriptorLayouts: @unchecked Sendable {
    let fns: DeviceFunctions
    let device: VkDevice
    private let lock = NSLock()
    private var sets: [[Int]: VkDescriptorSetLayout] = [:]     // key: bindings, then the texel ones
    private var pipelines: [[Int]: VkPipelineLayout] = [:]     // key: the set's, then push bytes

    init(fns: DeviceFunctions, device: VkDevice) { self.fns = fns; self.device = device }

    func setLayout(bindings n: Int, texel: [Int] = []) throws -> VkDescriptorSetLayout {
        try lock.withLock { try setLayoutLocked(n, texel) }
    }

    private func setLayoutLocked(_ n: Int, _ texel: [Int]) throws -> VkDescriptorSetLayout {
        if let l = sets[[n] + texel] { return l }
        var entries = (0..<n).map { i -> VkDescriptorSetLayoutBinding in
            var b = VkDescriptorSetLayoutBinding()
            b.binding = UInt32(i)
            b.descriptorType = texel.contains(i) ? VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER : VK_DESCRIPTOR_TYPE_STORAGE_BUFFER
            b.descriptorCount = 1
            b.stageFlags = VkShaderStageFlags(VK_SHADER_STAGE_COMPUTE_BIT.rawValue)
            return b
        }
        var layout: VkDescriptorSetLayout?
        try entries.withUnsafeMutableBufferPointer { ptr in
            var info = VkDescriptorSetLayoutCreateInfo()
            info.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO
            info.bindingCount = UInt32(n)
            info.pBindings = UnsafePointer(ptr.baseAddress)
            try check(fns.createDescriptorSetLayout(device, &info, nil, &layout), "vkCreateDescriptorSetLayout")
        }
        sets[[n] + texel] = layout!
        return layout!
    }

    func pipelineLayout(bindings n: Int, texel: [Int] = [], pushBytes: Int) throws -> (VkDescriptorSetLayout, VkPipelineLayout) {
        try lock.withLock {
            let set = try setLayoutLocked(n, texel)
            let key = [n] + texel + [-1, pushBytes]
            if let p = pipelines[key] { return (set, p) }
            var range = VkPushConstantRange(stageFlags: VkShaderStageFlags(VK_SHADER_STAGE_COMPUTE_BIT.rawValue),
                                            offset: 0, size: UInt32(pushBytes))
            var setOpt: VkDescriptorSetLayout? = set
            var layout: VkPipelineLayout?
            try withUnsafePointer(to: &setOpt) { setPtr in
                try withUnsafePointer(to: &range) { rangePtr in
                    var info = VkPipelineLayoutCreateInfo()
                    info.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO
                    info.setLayoutCount = 1
                    info.pSetLayouts = setPtr
                    info.pushConstantRangeCount = pushBytes > 0 ? 1 : 0
                    info.pPushConstantRanges = pushBytes > 0 ? rangePtr : nil
                    try check(fns.createPipelineLayout(device, &info, nil, &layout), "vkCreatePipelineLayout")
                }
            }
            pipelines[key] = layout!
            return (set, layout!)
        }
    }

    func destroy() {
        for p in pipelines.values { fns.destroyPipelineLayout(device, p, nil) }
        for s in sets.values { fns.destroyDescriptorSetLayout(device, s, nil) }
        pipelines = [:]; sets = [:]
    }
}
