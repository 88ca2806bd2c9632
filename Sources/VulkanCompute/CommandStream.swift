import CVulkan
import Foundation

/// How a dispatch uses a bound range; decides where barriers go.
public enum Access: Sendable { case read, write, readWrite }

/// A storage-buffer binding of a dispatch, in binding order.
public struct Binding: Sendable {
    public let range: BufferRange
    public let access: Access
    /// How a kernel's uniform texel buffer reads the range (nil for storage buffers).
    public let texel: TexelFormat?
    public init(_ range: BufferRange, _ access: Access, texel: TexelFormat? = nil) { self.range = range; self.access = access; self.texel = texel }
    public static func read(_ b: Buffer) -> Binding { Binding(b.whole, .read) }
    public static func write(_ b: Buffer) -> Binding { Binding(b.whole, .write) }
    public static func readWrite(_ b: Buffer) -> Binding { Binding(b.whole, .readWrite) }
    public static func read(_ r: BufferRange) -> Binding { Binding(r, .read) }
    public static func write(_ r: BufferRange) -> Binding { Binding(r, .write) }
    public static func readWrite(_ r: BufferRange) -> Binding { Binding(r, .readWrite) }
}

/// Texel formats of uniform texel buffer bindings: four floats, halves or words per texel, or one
/// element (32-bit words read as bits, or halves).
public enum TexelFormat: Sendable {
    case rgba32f, rgba32ui, rgba16f, rgba16ui, r32ui, r16f, r16ui
    public var bytes: Int {
        switch self { case .rgba32f, .rgba32ui: 16; case .rgba16f, .rgba16ui: 8; case .r32ui: 4; case .r16f, .r16ui: 2 }
    }
    var vkFormat: VkFormat {
        switch self {
        case .rgba32f: VK_FORMAT_R32G32B32A32_SFLOAT
        case .rgba32ui: VK_FORMAT_R32G32B32A32_UINT
        case .rgba16f: VK_FORMAT_R16G16B16A16_SFLOAT
        case .r32ui: VK_FORMAT_R32_UINT
        case .r16f: VK_FORMAT_R16_SFLOAT
        case .rgba16ui: VK_FORMAT_R16G16B16A16_UINT
        case .r16ui: VK_FORMAT_R16_UINT
        }
    }
}

/// A labelled GPU-timestamp region; read its duration after `finish()`.
public struct TimestampRegion: Sendable, Hashable {
    public let label: String
    let begin: Int
    let end: Int
}

/// Records many dispatches into one command buffer, with a pipeline barrier only where a command
/// reads or writes a range an earlier one wrote (or writes one an earlier one read) since the last
/// barrier. Submits in chunks of `maxCommandsPerSubmit` commands (barriers keep ordering across
/// chunks: they cover everything earlier in submission order) and waits with fences in `finish()`.
public final class CommandStream {
    public let device: ComputeDevice
    let fns: DeviceFunctions
    public let maxCommandsPerSubmit: Int
    /// Submissions allowed in flight before `submit()` waits for the oldest: recording runs at most
    /// this far ahead of the device, which bounds the memory of temporaries (their buffers are
    /// released as their submissions complete).
    public var maxInFlight = 3
    private var pool: VkCommandPool?
    private var current: VkCommandBuffer?
    /// Submitted chunks with the buffers, texel views and descriptor pools they use, released as
    /// their fences signal.
    private var inFlight: [(VkCommandBuffer, VkFence, [Buffer], [VkBufferView], [VkDescriptorPool])] = []
    private var freeFences: [VkFence] = []
    private var freeCommandBuffers: [VkCommandBuffer] = []
    /// Completed command buffers, reusable once finish() resets the pool.
    private var spentCommandBuffers: [VkCommandBuffer] = []
    private var commandsInChunk = 0
    /// Every descriptor pool (destroyed with the stream); `chunkPools` those the chunk being
    /// recorded allocates from, `freePools` reset ones. A chunk's pools are reset and its texel
    /// views destroyed when its fence signals, so a long recording holds the sets and views of at
    /// most `maxInFlight` + 1 chunks: Mesa 25's lavapipe maps a page per set (or view), and a
    /// recording of tens of thousands of dispatches between two `finish()`es reached the
    /// process's map limit there (vm.max_map_count), where its unchecked mmap crashed.
    private var descriptorPools: [VkDescriptorPool] = []
    private var chunkPools: [VkDescriptorPool] = []
    private var freePools: [VkDescriptorPool] = []
    /// Sets per pool: a chunk's dispatches fit one pool.
    private let poolCapacity: Int
    /// Descriptor pools created so far (tests: bounded however long a recording runs).
    var descriptorPoolCount: Int { descriptorPools.count }
    private var pendingWrites: [BufferRange] = []
    private var pendingReads: [BufferRange] = []
    /// Keeps every buffer used by the chunk being recorded alive (submitted chunks keep theirs
    /// until they complete, so temporaries of long recordings are freed along the way).
    private var retained: [Buffer] = []
    /// Texel-buffer views of the chunk being recorded (destroyed with its descriptor pools' reset).
    private var views: [VkBufferView] = []

    // Timestamps
    private var queryPool: VkQueryPool?
    private let queryCapacity: Int
    private var nextQuery = 0
    private var queriesReset = false
    private var pendingRegions: [TimestampRegion] = []
    private var openRegions: [String: Int] = [:]
    /// Durations of the regions of the last `finish()`, in nanoseconds, in recording order.
    public private(set) var timings: [(label: String, nanoseconds: Double)] = []

    // Per-dispatch profile (`profiling`): a timestamp pair around every dispatch, labelled with
    // the op that recorded it.
    /// Timestamps around every dispatch while true (costs two queries per dispatch).
    public var profiling = false
    /// What the next dispatches belong to (set by the op layer while profiling), and its FLOPs.
    public var opLabel = ""
    public var opFlops = 0.0
    /// How the next dispatch runs beyond its kernel's name (an op's plan, e.g. the CPU GEMM's
    /// float4 paths), for the profile; cleared by each dispatch.
    public var dispatchVariant = ""
    private var pendingDispatches: [(label: String, kernel: String, variant: String, begin: Int, end: Int, bytes: Int, flops: Double)] = []
    /// Dispatches timed since the last `resetProfile()`, in recording order.
    public private(set) var profile: [DispatchTiming] = []
    public func resetProfile() { profile = [] }

    /// Test seam: record no barriers at all (a test shows that synchronization validation then
    /// reports the hazards a GPU would turn into wrong numbers). Never set outside tests.
    var omitBarriersForTesting = false

    // Statistics (for tests and benchmarks).
    public private(set) var dispatchCount = 0
    public private(set) var barrierCount = 0
    public private(set) var submitCount = 0

    public init(device: ComputeDevice, maxCommandsPerSubmit: Int = 256, timestampCapacity: Int = 256) throws {
        self.device = device
        self.fns = device.fns
        self.maxCommandsPerSubmit = max(1, maxCommandsPerSubmit)
        poolCapacity = max(16, self.maxCommandsPerSubmit)
        self.queryCapacity = timestampCapacity == 0 ? 0 : max(timestampCapacity, 16384)   // room for profiling
        var info = VkCommandPoolCreateInfo()
        info.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO
        info.flags = VkCommandPoolCreateFlags(VK_COMMAND_POOL_CREATE_TRANSIENT_BIT.rawValue)
        info.queueFamilyIndex = device.queueFamily
        try check(fns.createCommandPool(device.handle, &info, nil, &pool), "vkCreateCommandPool")
    }

    deinit {
        try? waitInFlight()
        let d = device.handle
        for (_, f, _, _, _) in inFlight { fns.destroyFence(d, f, nil) }
        for v in views { fns.destroyBufferView(d, v, nil) }
        for f in freeFences { fns.destroyFence(d, f, nil) }
        for p in descriptorPools { fns.destroyDescriptorPool(d, p, nil) }
        if let queryPool { fns.destroyQueryPool(d, queryPool, nil) }
        fns.destroyCommandPool(d, pool, nil)
    }

    // MARK: Recording

    private func recording() throws -> VkCommandBuffer {
        if let current { return current }
        let cb: VkCommandBuffer
        if let reused = freeCommandBuffers.popLast() { cb = reused } else {
            var info = VkCommandBufferAllocateInfo()
            info.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO
            info.commandPool = pool
            info.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY
            info.commandBufferCount = 1
            var out: VkCommandBuffer?
            try check(fns.allocateCommandBuffers(device.handle, &info, &out), "vkAllocateCommandBuffers")
            cb = out!
        }
        var begin = VkCommandBufferBeginInfo()
        begin.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO
        begin.flags = VkCommandBufferUsageFlags(VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT.rawValue)
        try check(fns.beginCommandBuffer(cb, &begin), "vkBeginCommandBuffer")
        current = cb
        return cb
    }

    /// Inserts a barrier if `bindings` conflict with commands since the last one, then records them as pending.
    private func track(_ bindings: [Binding], into cb: VkCommandBuffer) {
        var hazard = false
        for b in bindings {
            if pendingWrites.contains(where: { $0.overlaps(b.range) }) { hazard = true; break }
            if b.access != .read, pendingReads.contains(where: { $0.overlaps(b.range) }) { hazard = true; break }
        }
        if hazard && !omitBarriersForTesting {
            let stages = VkPipelineStageFlags(VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT.rawValue | VK_PIPELINE_STAGE_TRANSFER_BIT.rawValue)
            var barrier = VkMemoryBarrier()
            barrier.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER
            barrier.srcAccessMask = VkAccessFlags(VK_ACCESS_SHADER_WRITE_BIT.rawValue | VK_ACCESS_TRANSFER_WRITE_BIT.rawValue)
            barrier.dstAccessMask = VkAccessFlags(VK_ACCESS_SHADER_READ_BIT.rawValue | VK_ACCESS_SHADER_WRITE_BIT.rawValue
                                                  | VK_ACCESS_TRANSFER_READ_BIT.rawValue | VK_ACCESS_TRANSFER_WRITE_BIT.rawValue)
            fns.cmdPipelineBarrier(cb, stages, stages, 0, 1, &barrier, 0, nil, 0, nil)
            barrierCount += 1
            pendingWrites.removeAll(keepingCapacity: true)
            pendingReads.removeAll(keepingCapacity: true)
        }
        for b in bindings {
            if b.access != .read { pendingWrites.append(b.range) }
            if b.access != .write { pendingReads.append(b.range) }
            retained.append(b.range.buffer)
        }
    }

    /// Records one dispatch of `kernel` over `groups` workgroups.
    public func dispatch(_ kernel: Kernel, _ bindings: [Binding], push: [UInt32] = [], groups: (Int, Int, Int)) throws {
        let d = kernel.descriptor
        let caps = device.capabilities
        guard bindings.count == d.bindings else {
            throw VulkanError.invalidArgument("\(d.shader): \(bindings.count) bindings given, the kernel has \(d.bindings)")
        }
        guard push.count * 4 == d.pushConstantBytes else {
            throw VulkanError.invalidArgument("\(d.shader): \(push.count * 4) bytes of push constants given, the kernel takes \(d.pushConstantBytes)")
        }
        let counts = [groups.0, groups.1, groups.2]
        for (axis, n) in counts.enumerated() where n < 0 || n > caps.maxComputeWorkGroupCount[axis] {
            throw VulkanError.invalidArgument("\(d.shader): \(n) workgroups on axis \(axis) exceeds the device limit \(caps.maxComputeWorkGroupCount[axis]) of \(caps.name)")
        }
        for (i, b) in bindings.enumerated() {
            try device.checkOwnership(b.range.buffer)
            if d.texelBindings.contains(i) {
                guard let f = b.texel else {
                    throw VulkanError.invalidArgument("\(d.shader) binding \(i) is a uniform texel buffer: pass its texel format")
                }
                if b.range.size / f.bytes > caps.maxTexelBufferElements {
                    throw VulkanError.texelBufferTooLarge(texels: b.range.size / f.bytes, limit: caps.maxTexelBufferElements, what: "\(d.shader) binding \(i)")
                }
                if b.range.absoluteOffset % caps.minTexelBufferOffsetAlignment != 0 || b.range.size % f.bytes != 0 {
                    throw VulkanError.invalidArgument("\(d.shader) binding \(i): texel buffer range at \(b.range.offset) of \(b.range.size) bytes is not aligned to \(caps.minTexelBufferOffsetAlignment) bytes and whole \(f.bytes)-byte texels")
                }
                continue
            }
            if b.range.size > caps.maxStorageBufferRange {
                throw VulkanError.bindingTooLarge(bytes: b.range.size, limit: caps.maxStorageBufferRange, what: "\(d.shader) binding \(i)")
            }
            if b.range.absoluteOffset % caps.minStorageBufferOffsetAlignment != 0 {
                throw VulkanError.invalidArgument("\(d.shader) binding \(i): offset \(b.range.offset) is not a multiple of the storage-buffer offset alignment \(caps.minStorageBufferOffsetAlignment); pass the offset to the kernel instead")
            }
        }
        if counts.contains(0) { return }
        let cb = try recording()
        let set = try allocateSet(kernel.setLayout)
        let infos = bindings.map { VkDescriptorBufferInfo(buffer: $0.range.buffer.vkBuffer, offset: VkDeviceSize($0.range.absoluteOffset), range: VkDeviceSize($0.range.size)) }
        var texelViews = [VkBufferView?](repeating: nil, count: bindings.count)
        for i in d.texelBindings {
            var info = VkBufferViewCreateInfo()
            info.sType = VK_STRUCTURE_TYPE_BUFFER_VIEW_CREATE_INFO
            info.buffer = bindings[i].range.buffer.vkBuffer
            info.format = bindings[i].texel!.vkFormat
            info.offset = VkDeviceSize(bindings[i].range.absoluteOffset)
            info.range = VkDeviceSize(bindings[i].range.size)
            try check(fns.createBufferView(device.handle, &info, nil, &texelViews[i]), "vkCreateBufferView(\(d.shader) binding \(i))")
            views.append(texelViews[i]!)
        }
        infos.withUnsafeBufferPointer { infoPtr in
            texelViews.withUnsafeBufferPointer { viewPtr in
                var writes = (0..<bindings.count).map { i -> VkWriteDescriptorSet in
                    var w = VkWriteDescriptorSet()
                    w.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET
                    w.dstSet = set
                    w.dstBinding = UInt32(i)
                    w.descriptorCount = 1
                    if d.texelBindings.contains(i) {
                        w.descriptorType = VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER
                        w.pTexelBufferView = viewPtr.baseAddress! + i
                    } else {
                        w.descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER
                        w.pBufferInfo = infoPtr.baseAddress! + i
                    }
                    return w
                }
                fns.updateDescriptorSets(device.handle, UInt32(writes.count), &writes, 0, nil)
            }
        }
        track(bindings, into: cb)
        fns.cmdBindPipeline(cb, VK_PIPELINE_BIND_POINT_COMPUTE, kernel.pipeline)
        var setOpt: VkDescriptorSet? = set
        fns.cmdBindDescriptorSets(cb, VK_PIPELINE_BIND_POINT_COMPUTE, kernel.layout, 0, 1, &setOpt, 0, nil)
        if !push.isEmpty {
            push.withUnsafeBytes { fns.cmdPushConstants(cb, kernel.layout, VkShaderStageFlags(VK_SHADER_STAGE_COMPUTE_BIT.rawValue), 0, UInt32($0.count), $0.baseAddress) }
        }
        let begin = profiling ? try writeTimestamp() : -1
        fns.cmdDispatch(cb, UInt32(groups.0), UInt32(groups.1), UInt32(groups.2))
        if profiling {
            pendingDispatches.append((opLabel, d.shader, dispatchVariant, begin, try writeTimestamp(), bindings.reduce(0) { $0 + $1.range.size }, opFlops))
        }
        dispatchVariant = ""
        dispatchCount += 1
        try commandRecorded()
    }

    /// Fills `range` with a repeated 32-bit word (offset and size multiples of 4).
    public func fill(_ range: BufferRange, with word: UInt32) throws {
        try device.checkOwnership(range.buffer)
        guard range.offset % 4 == 0, range.size % 4 == 0 else {
            throw VulkanError.invalidArgument("fill: offset \(range.offset) and size \(range.size) must be multiples of 4")
        }
        let cb = try recording()
        track([Binding(range, .write)], into: cb)
        fns.cmdFillBuffer(cb, range.buffer.vkBuffer, VkDeviceSize(range.absoluteOffset), VkDeviceSize(range.size), word)
        try commandRecorded()
    }

    /// Copies `source` into `destination` (same size).
    public func copy(from source: BufferRange, to destination: BufferRange) throws {
        try device.checkOwnership(source.buffer)
        try device.checkOwnership(destination.buffer)
        guard source.size == destination.size else {
            throw VulkanError.invalidArgument("copy: source is \(source.size) bytes, destination \(destination.size)")
        }
        let cb = try recording()
        track([Binding(source, .read), Binding(destination, .write)], into: cb)
        var region = VkBufferCopy(srcOffset: VkDeviceSize(source.absoluteOffset), dstOffset: VkDeviceSize(destination.absoluteOffset), size: VkDeviceSize(source.size))
        fns.cmdCopyBuffer(cb, source.buffer.vkBuffer, destination.buffer.vkBuffer, 1, &region)
        try commandRecorded()
    }

    private func commandRecorded() throws {
        commandsInChunk += 1
        if commandsInChunk >= maxCommandsPerSubmit { try submit() }
    }

    // MARK: Timestamps

    private func writeTimestamp() throws -> Int {
        guard device.capabilities.timestamps, queryCapacity > 0 else {
            throw VulkanError.invalidArgument("\(device.name) does not support timestamps on its compute queue (or the stream was created with timestampCapacity 0)")
        }
        let cb = try recording()
        if queryPool == nil {
            var info = VkQueryPoolCreateInfo()
            info.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO
            info.queryType = VK_QUERY_TYPE_TIMESTAMP
            info.queryCount = UInt32(queryCapacity)
            try check(fns.createQueryPool(device.handle, &info, nil, &queryPool), "vkCreateQueryPool")
        }
        if !queriesReset {
            fns.cmdResetQueryPool(cb, queryPool, 0, UInt32(queryCapacity))
            queriesReset = true
        }
        guard nextQuery < queryCapacity else {
            throw VulkanError.invalidArgument("More than \(queryCapacity) timestamps in one stream; call finish() more often or raise timestampCapacity")
        }
        fns.cmdWriteTimestamp(cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, queryPool, UInt32(nextQuery))
        nextQuery += 1
        return nextQuery - 1
    }

    /// Starts a timed region: everything recorded until `endRegion` is measured on the GPU.
    public func beginRegion(_ label: String) throws {
        openRegions[label] = try writeTimestamp()
    }

    @discardableResult
    public func endRegion(_ label: String) throws -> TimestampRegion {
        guard let begin = openRegions.removeValue(forKey: label) else {
            throw VulkanError.invalidArgument("endRegion(\(label)) without beginRegion")
        }
        let region = TimestampRegion(label: label, begin: begin, end: try writeTimestamp())
        pendingRegions.append(region)
        return region
    }

    // MARK: Submission

    /// Submits what was recorded so far without waiting.
    public func submit() throws {
        guard let cb = current else { return }
        // Make every write visible to host reads of mapped memory once the fence signals, and to
        // work in later submissions on the queue (other streams: staged uploads, another context),
        // whose hazards this stream's tracking cannot see.
        var barrier = VkMemoryBarrier()
        barrier.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER
        barrier.srcAccessMask = VkAccessFlags(VK_ACCESS_SHADER_WRITE_BIT.rawValue | VK_ACCESS_TRANSFER_WRITE_BIT.rawValue)
        barrier.dstAccessMask = VkAccessFlags(VK_ACCESS_HOST_READ_BIT.rawValue | VK_ACCESS_SHADER_READ_BIT.rawValue | VK_ACCESS_SHADER_WRITE_BIT.rawValue
                                              | VK_ACCESS_TRANSFER_READ_BIT.rawValue | VK_ACCESS_TRANSFER_WRITE_BIT.rawValue)
        let work = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT.rawValue | VK_PIPELINE_STAGE_TRANSFER_BIT.rawValue
        fns.cmdPipelineBarrier(cb, VkPipelineStageFlags(work), VkPipelineStageFlags(work | VK_PIPELINE_STAGE_HOST_BIT.rawValue),
                               0, 1, &barrier, 0, nil, 0, nil)
        try check(fns.endCommandBuffer(cb), "vkEndCommandBuffer")
        current = nil
        commandsInChunk = 0
        let fence = try takeFence()
        try device.submit(cb, fence: fence)
        inFlight.append((cb, fence, retained, views, chunkPools))
        retained = []
        views = []
        chunkPools = []
        submitCount += 1
        try reclaimCompleted()
        while inFlight.count > maxInFlight {
            var oldest: VkFence? = inFlight[0].1
            try check(fns.waitForFences(device.handle, 1, &oldest, VkBool32(VK_TRUE), UInt64.max), "vkWaitForFences")
            try reclaimCompleted()
        }
    }

    /// Recycles the chunks whose fences have signalled, releasing their buffers, texel views and
    /// descriptor sets.
    private func reclaimCompleted() throws {
        while let (cb, f, _, chunkViews, pools) = inFlight.first {
            let r = fns.getFenceStatus(device.handle, f)
            if r == VK_NOT_READY { return }
            try check(r, "vkGetFenceStatus")
            spentCommandBuffers.append(cb); freeFences.append(f)
            release(views: chunkViews, pools: pools)
            inFlight.removeFirst()
        }
    }

    /// A completed chunk's descriptor pools reset (its sets freed) and its texel views destroyed.
    /// Its command buffer, which refers to them, is only reset (at finish), never resubmitted.
    private func release(views chunkViews: [VkBufferView], pools: [VkDescriptorPool]) {
        for p in pools { _ = fns.resetDescriptorPool(device.handle, p, 0) }
        freePools += pools
        for v in chunkViews { fns.destroyBufferView(device.handle, v, nil) }
    }

    private func takeFence() throws -> VkFence {
        if let f = freeFences.popLast() {
            var fOpt: VkFence? = f
            try check(fns.resetFences(device.handle, 1, &fOpt), "vkResetFences")
            return f
        }
        var info = VkFenceCreateInfo()
        info.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO
        var f: VkFence?
        try check(fns.createFence(device.handle, &info, nil, &f), "vkCreateFence")
        return f!
    }

    private func waitInFlight() throws {
        guard !inFlight.isEmpty else { return }
        var fences: [VkFence?] = inFlight.map { $0.1 }
        try check(fns.waitForFences(device.handle, UInt32(fences.count), &fences, VkBool32(VK_TRUE), UInt64.max), "vkWaitForFences")
        for (cb, f, _, chunkViews, pools) in inFlight {
            freeCommandBuffers.append(cb); freeFences.append(f)
            release(views: chunkViews, pools: pools)
        }
        inFlight.removeAll()
    }

    /// Submits, waits for completion, reads timestamps, and readies the stream for reuse.
    public func finish() throws {
        guard openRegions.isEmpty else {
            throw VulkanError.invalidArgument("finish() with open timestamp regions: \(openRegions.keys.sorted())")
        }
        try submit()
        try waitInFlight()
        timings = []
        if let queryPool, nextQuery > 0 {
            var values = [UInt64](repeating: 0, count: nextQuery)
            try check(fns.getQueryPoolResults(device.handle, queryPool, 0, UInt32(nextQuery), nextQuery * 8, &values, 8,
                                              VkQueryResultFlags(VK_QUERY_RESULT_64_BIT.rawValue | VK_QUERY_RESULT_WAIT_BIT.rawValue)),
                      "vkGetQueryPoolResults")
            let bits = device.capabilities.timestampValidBits
            let mask: UInt64 = bits >= 64 ? .max : (1 << UInt64(bits)) - 1
            let period = device.capabilities.timestampPeriodNs
            timings = pendingRegions.map { r in
                let ticks = (values[r.end] &- values[r.begin]) & mask
                return (r.label, Double(ticks) * period)
            }
            profile += pendingDispatches.map { p in
                DispatchTiming(label: p.label, kernel: p.kernel, variant: p.variant, beginNs: Double(values[p.begin] & mask) * period,
                               nanoseconds: Double((values[p.end] &- values[p.begin]) & mask) * period, bytes: p.bytes, flops: p.flops)
            }
            lastTimestampValues = values
        }
        pendingRegions = []
        pendingDispatches = []
        nextQuery = 0
        queriesReset = false
        pendingWrites = []
        pendingReads = []
        retained = []
        _ = fns.resetCommandPool(device.handle, pool, 0)
        freeCommandBuffers += spentCommandBuffers
        spentCommandBuffers = []
    }

    /// Raw timestamp values of the last `finish()` (ticks), in recording order.
    public private(set) var lastTimestampValues: [UInt64] = []

    /// Nanoseconds of the first region named `label` in the last `finish()`.
    public func nanoseconds(_ label: String) -> Double? { timings.first { $0.label == label }?.nanoseconds }

    // MARK: Descriptors (below); the profile's record



    /// A descriptor set from the recording chunk's pools (another pool when the last is full).
    private func allocateSet(_ layout: VkDescriptorSetLayout) throws -> VkDescriptorSet {
        var layoutOpt: VkDescriptorSetLayout? = layout
        var fresh = false
        while true {
            if chunkPools.isEmpty { chunkPools.append(try takePool()); fresh = true }
            var info = VkDescriptorSetAllocateInfo()
            info.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO
            info.descriptorPool = chunkPools[chunkPools.count - 1]
            info.descriptorSetCount = 1
            var set: VkDescriptorSet?
            let r = withUnsafePointer(to: &layoutOpt) { info.pSetLayouts = $0; return fns.allocateDescriptorSets(device.handle, &info, &set) }
            if r == VK_SUCCESS, let set { return set }
            guard r == VK_ERROR_OUT_OF_POOL_MEMORY || r == VK_ERROR_FRAGMENTED_POOL else { try check(r, "vkAllocateDescriptorSets"); continue }
            // A pool just taken that cannot hold one set is a layout beyond its sizes.
            if fresh { throw VulkanError.invalidArgument("a descriptor set layout does not fit a pool of \(poolCapacity) sets") }
            chunkPools.append(try takePool())
            fresh = true
        }
    }

    /// A reset pool, or a new one (`poolCapacity` sets of up to 8 storage buffers and 2 texel buffers each).
    private func takePool() throws -> VkDescriptorPool {
        if let p = freePools.popLast() { return p }
        var sizes = [VkDescriptorPoolSize(type: VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, descriptorCount: UInt32(poolCapacity * 8)),
                     VkDescriptorPoolSize(type: VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER, descriptorCount: UInt32(poolCapacity * 2))]
        var info = VkDescriptorPoolCreateInfo()
        info.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO
        info.maxSets = UInt32(poolCapacity)
        info.poolSizeCount = UInt32(sizes.count)
        var pool: VkDescriptorPool?
        try sizes.withUnsafeMutableBufferPointer { sizePtr in
            info.pPoolSizes = UnsafePointer(sizePtr.baseAddress)
            try check(fns.createDescriptorPool(device.handle, &info, nil, &pool), "vkCreateDescriptorPool")
        }
        descriptorPools.append(pool!)
        return pool!
    }
}

/// One timed dispatch of a profile.
public struct DispatchTiming: Sendable, Codable {
    /// The op and shapes that recorded it, e.g. `gemm 256×1000×768`.
    public let label: String
    /// The SPIR-V module (kernel variant).
    public let kernel: String
    /// How it ran beyond the module, where the op says (the CPU GEMM's float4 paths and form).
    public let variant: String
    /// Device clock at its start (for the gaps between dispatches).
    public let beginNs: Double
    public let nanoseconds: Double
    /// Bytes of its bindings (an upper bound on its memory traffic) and its FLOPs where known.
    public let bytes: Int
    public let flops: Double
}
