import CVulkan
import Foundation

/// What a buffer is for, which decides its memory type.
public enum MemoryKind: Sendable {
    /// Tensors: device-local (host-visible too where the device is a CPU or an integrated GPU,
    /// so uploads and downloads are plain copies).
    case device
    /// Staging for uploads/downloads on devices whose device-local memory is not mappable.
    case staging
}

/// Carves buffers out of few large `vkAllocateMemory` blocks (one VkBuffer spans each block), with
/// first-fit free lists that coalesce on free. Requests of half a block or more get a block of their
/// own, returned to the driver when freed.
public final class MemoryAllocator: @unchecked Sendable {
    final class Block {
        let memory: VkDeviceMemory
        let buffer: VkBuffer
        let size: Int
        let typeIndex: Int
        let mapped: UnsafeMutableRawPointer?
        let dedicated: Bool
        let kind: MemoryKind
        /// Free ranges, sorted by offset, never adjacent (coalesced).
        var free: [(offset: Int, size: Int)]
        init(memory: VkDeviceMemory, buffer: VkBuffer, size: Int, typeIndex: Int, mapped: UnsafeMutableRawPointer?, dedicated: Bool, kind: MemoryKind) {
            self.memory = memory; self.buffer = buffer; self.size = size; self.typeIndex = typeIndex
            self.mapped = mapped; self.dedicated = dedicated; self.kind = kind; free = [(0, size)]
        }
    }

    let fns: DeviceFunctions
    let device: VkDevice
    let caps: DeviceCapabilities
    let blockSize: Int
    /// Alignment of every buffer's offset: the storage-buffer offset alignment, at least 16 B.
    public let alignment: Int
    public let budget: Int
    private let lock = NSLock()
    private var blocks: [Block] = []
    public private(set) var allocatedBytes = 0   // sum of block sizes
    public private(set) var usedBytes = 0 {      // sum of live buffer sizes (aligned)
        didSet { peakUsedBytes = max(peakUsedBytes, usedBytes) }
    }
    /// The most bytes live buffers held at once since creation or `resetPeak()`.
    public private(set) var peakUsedBytes = 0
    public func resetPeak() { lock.withLock { peakUsedBytes = usedBytes } }
    public var blockCount: Int { lock.withLock { blocks.count } }

    init(fns: DeviceFunctions, device: VkDevice, capabilities caps: DeviceCapabilities, budget: Int?, blockSize: Int) {
        self.fns = fns; self.device = device; self.caps = caps
        alignment = max(16, caps.minStorageBufferOffsetAlignment)
        let heapSize = caps.memoryHeaps.filter { $0.deviceLocal }.map { $0.size }.max() ?? caps.memoryHeaps.map { $0.size }.max() ?? 0
        // A CPU device's "device memory" is host RAM obtained with malloc, whatever heap size it
        // advertises (lavapipe reports a fixed 2 GiB): budget three quarters of physical memory.
        let limit = caps.isCPU ? max(heapSize, Int(Double(ProcessInfo.processInfo.physicalMemory) * 0.75)) : heapSize
        self.budget = budget.map { min($0, limit) } ?? limit
        // Under a small budget, blocks of a quarter of it (at least 1 MiB): a whole default block
        // would not fit the budget at all.
        let quarter = max(1 << 20, self.budget / 4) / alignment * alignment
        self.blockSize = min(blockSize, quarter)
    }

    /// Picks a memory type for `kind` among those allowed by `allowed` (a bit mask).
    func memoryType(for kind: MemoryKind, allowed: UInt32) -> Int? {
        let types = caps.memoryTypes.filter { allowed & (1 << UInt32($0.index)) != 0 }
        let preferences: [(DeviceCapabilities.MemoryType) -> Bool]
        switch kind {
        case .device:
            if caps.deviceType == "cpu" || caps.deviceType == "integrated-gpu" {
                preferences = [{ $0.deviceLocal && $0.hostVisible && $0.hostCoherent }, { $0.deviceLocal }]
            } else {
                preferences = [{ $0.deviceLocal && !$0.hostVisible }, { $0.deviceLocal }]
            }
        case .staging:
            preferences = [{ $0.hostVisible && $0.hostCoherent && $0.flags.contains("host-cached") }, { $0.hostVisible && $0.hostCoherent }]
        }
        for p in preferences { if let t = types.first(where: p) { return t.index } }
        return kind == .device ? types.first?.index : nil
    }

    private func heapDescription(_ typeIndex: Int) -> String {
        let t = caps.memoryTypes[typeIndex]
        let h = caps.memoryHeaps[t.heap]
        return "heap \(h.index) of \(caps.name) (\(formatBytes(h.size)), memory type \(typeIndex): \(t.flags.joined(separator: ", ")))"
    }

    /// Allocates `size` bytes (rounded up to the alignment).
    func allocate(size requested: Int, kind: MemoryKind) throws -> (Block, Int, Int) {
        guard requested > 0 else { throw VulkanError.invalidArgument("Buffer size must be positive (got \(requested))") }
        let size = (requested + alignment - 1) / alignment * alignment
        return try lock.withLock {
            // First fit in an existing block of the right kind.
            let wantType = try probeType(kind)
            if size < blockSize / 2 {
                for block in blocks where block.kind == kind && block.typeIndex == wantType && !block.dedicated {
                    if let offset = take(size, from: block) { usedBytes += size; return (block, offset, size) }
                }
            }
            let dedicated = size >= blockSize / 2
            let newSize = dedicated ? size : blockSize
            let block = try makeBlock(size: newSize, kind: kind, requested: requested, dedicated: dedicated)
            blocks.append(block)
            let offset = take(size, from: block)!
            usedBytes += size
            return (block, offset, size)
        }
    }

    func release(block: Block, offset: Int, size: Int) {
        lock.withLock {
            usedBytes -= size
            var free = block.free
            let i = free.firstIndex { $0.offset > offset } ?? free.count
            free.insert((offset, size), at: i)
            // Coalesce with neighbours.
            if i + 1 < free.count, free[i].offset + free[i].size == free[i + 1].offset {
                free[i].size += free[i + 1].size; free.remove(at: i + 1)
            }
            if i > 0, free[i - 1].offset + free[i - 1].size == free[i].offset {
                free[i - 1].size += free[i].size; free.remove(at: i)
            }
            block.free = free
            if block.dedicated, free.count == 1, free[0].size == block.size {
                destroy(block)
                blocks.removeAll { $0 === block }
            }
        }
    }

    private func take(_ size: Int, from block: Block) -> Int? {
        for (i, range) in block.free.enumerated() where range.size >= size {
            let offset = range.offset
            if range.size == size { block.free.remove(at: i) } else { block.free[i] = (offset + size, range.size - size) }
            return offset
        }
        return nil
    }

    private var typeCache: [MemoryKind: Int] = [:]
    /// The memory type a buffer of `kind` lands in (queried once with a probe buffer).
    private func probeType(_ kind: MemoryKind) throws -> Int {
        if let t = typeCache[kind] { return t }
        let probe = try createBuffer(size: 256)
        defer { fns.destroyBuffer(device, probe, nil) }
        var req = VkMemoryRequirements()
        fns.getBufferMemoryRequirements(device, probe, &req)
        guard let t = memoryType(for: kind, allowed: req.memoryTypeBits) else {
            throw VulkanError.outOfMemory(bytes: 0, heap: caps.name, detail: "no memory type suits \(kind) buffers")
        }
        typeCache[kind] = t
        return t
    }

    private func createBuffer(size: Int) throws -> VkBuffer {
        var info = VkBufferCreateInfo()
        info.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO
        info.size = VkDeviceSize(size)
        info.usage = VkBufferUsageFlags(VK_BUFFER_USAGE_STORAGE_BUFFER_BIT.rawValue | VK_BUFFER_USAGE_UNIFORM_TEXEL_BUFFER_BIT.rawValue | VK_BUFFER_USAGE_TRANSFER_SRC_BIT.rawValue
                                        | VK_BUFFER_USAGE_TRANSFER_DST_BIT.rawValue)
        info.sharingMode = VK_SHARING_MODE_EXCLUSIVE
        var buffer: VkBuffer?
        try check(fns.createBuffer(device, &info, nil, &buffer), "vkCreateBuffer(\(formatBytes(size)))")
        return buffer!
    }

    private func makeBlock(size: Int, kind: MemoryKind, requested: Int, dedicated: Bool) throws -> Block {
        let typeIndex = try probeType(kind)
        let heap = heapDescription(typeIndex)
        let heapSize = caps.memoryHeaps[caps.memoryTypes[typeIndex].heap].size
        if requested > heapSize {
            throw VulkanError.outOfMemory(bytes: requested, heap: heap, detail: "larger than the whole heap")
        }
        if size > caps.maxMemoryAllocationSize {
            throw VulkanError.outOfMemory(bytes: requested, heap: heap,
                                          detail: "larger than the device's maxMemoryAllocationSize of \(formatBytes(caps.maxMemoryAllocationSize)); split the tensor")
        }
        if kind == .device, allocatedBytes + size > budget {
            throw VulkanError.outOfMemory(bytes: requested, heap: heap,
                                          detail: "the memory budget of \(formatBytes(budget)) is exhausted (\(formatBytes(usedBytes)) in live buffers, \(formatBytes(allocatedBytes)) in blocks); free tensors or use a smaller batch")
        }
        let buffer = try createBuffer(size: size)
        var req = VkMemoryRequirements()
        fns.getBufferMemoryRequirements(device, buffer, &req)
        var info = VkMemoryAllocateInfo()
        info.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO
        info.allocationSize = req.size
        info.memoryTypeIndex = UInt32(typeIndex)
        var memory: VkDeviceMemory?
        let r = fns.allocateMemory(device, &info, nil, &memory)
        guard r == VK_SUCCESS, let memory else {
            fns.destroyBuffer(device, buffer, nil)
            throw VulkanError.outOfMemory(bytes: requested, heap: heap, detail: "vkAllocateMemory failed with \(resultName(r))")
        }
        do { try check(fns.bindBufferMemory(device, buffer, memory, 0), "vkBindBufferMemory") } catch {
            fns.destroyBuffer(device, buffer, nil); fns.freeMemory(device, memory, nil); throw error
        }
        var mapped: UnsafeMutableRawPointer?
        if caps.memoryTypes[typeIndex].hostVisible {
            try check(fns.mapMemory(device, memory, 0, VkDeviceSize(VK_WHOLE_SIZE), 0, &mapped), "vkMapMemory")
        }
        if kind == .device { allocatedBytes += size }
        return Block(memory: memory, buffer: buffer, size: size, typeIndex: typeIndex, mapped: mapped, dedicated: dedicated, kind: kind)
    }

    private func destroy(_ block: Block) {
        if block.mapped != nil { fns.unmapMemory(device, block.memory) }
        fns.destroyBuffer(device, block.buffer, nil)
        fns.freeMemory(device, block.memory, nil)
        if block.kind == .device { allocatedBytes -= block.size }
    }

    deinit { blocks.forEach(destroy) }
}
