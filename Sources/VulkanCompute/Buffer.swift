import CVulkan
import Foundation

/// A sub-allocated device buffer. Keeps its device alive; returns its range to the allocator on deinit.
public final class Buffer: @unchecked Sendable {
    public let device: ComputeDevice
    let block: MemoryAllocator.Block
    /// Byte offset of this buffer inside its block's VkBuffer.
    let offset: Int
    /// Bytes requested.
    public let size: Int
    let reserved: Int
    public let kind: MemoryKind

    init(device: ComputeDevice, size: Int, kind: MemoryKind) throws {
        self.device = device
        (block, offset, reserved) = try device.memory.allocate(size: size, kind: kind)
        self.size = size
        self.kind = kind
    }

    deinit { device.memory.release(block: block, offset: offset, size: reserved) }

    /// Host address of the first byte when the memory is host-visible (lavapipe, integrated GPUs).
    public var mappedPointer: UnsafeMutableRawPointer? {
        guard kind == .staging || device.directHostAccess else { return nil }
        return block.mapped.map { $0 + offset }
    }
    public var isHostVisible: Bool { mappedPointer != nil }
    public var vkBuffer: VkBuffer { block.buffer }

    /// The whole buffer as a range.
    public var whole: BufferRange { BufferRange(buffer: self, offset: 0, size: size) }

    /// A view of `size` bytes from `offset` (bytes). Offsets that are bound as storage buffers must be
    /// multiples of the device's minStorageBufferOffsetAlignment; `bind` checks.
    public func range(offset: Int, size: Int) throws -> BufferRange {
        guard offset >= 0, size > 0, offset + size <= self.size else {
            throw VulkanError.invalidArgument("Range [\(offset), \(offset + size)) is outside the buffer of \(self.size) bytes")
        }
        return BufferRange(buffer: self, offset: offset, size: size)
    }
}

/// A byte range of a buffer: what dispatches bind, read and write.
public struct BufferRange: @unchecked Sendable {
    public let buffer: Buffer
    public let offset: Int
    public let size: Int

    var absoluteOffset: Int { buffer.offset + offset }
    func overlaps(_ other: BufferRange) -> Bool {
        buffer.block === other.buffer.block
            && absoluteOffset < other.absoluteOffset + other.size
            && other.absoluteOffset < absoluteOffset + size
    }

    /// Splits into consecutive ranges of at most `maxBytes` (rounded down to `granule` bytes and
    /// to the offset alignment), for kernels whose operand exceeds maxStorageBufferRange.
    public func chunks(maxBytes: Int, granule: Int = 4) -> [BufferRange] {
        let align = buffer.device.memory.alignment
        let step = max(granule, maxBytes / lcm(granule, align) * lcm(granule, align))
        return stride(from: 0, to: size, by: step).map {
            BufferRange(buffer: buffer, offset: offset + $0, size: min(step, size - $0))
        }
    }
}

private func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }
private func lcm(_ a: Int, _ b: Int) -> Int { a / gcd(a, b) * b }

extension ComputeDevice {
    /// A new buffer of `bytes` bytes. Contents are undefined.
    public func makeBuffer(bytes: Int, kind: MemoryKind = .device) throws -> Buffer {
        try Buffer(device: self, size: bytes, kind: kind)
    }

    /// A buffer holding `values`.
    public func makeBuffer<T>(_ values: [T]) throws -> Buffer {
        let b = try makeBuffer(bytes: max(1, values.count * MemoryLayout<T>.stride))
        try values.withUnsafeBytes { try upload($0, to: b) }
        return b
    }

    /// Copies host bytes into `buffer` at `offset`. The buffer must not be in use by unfinished GPU work.
    public func upload(_ bytes: UnsafeRawBufferPointer, to buffer: Buffer, offset: Int = 0) throws {
        try checkOwnership(buffer)
        guard offset >= 0, offset + bytes.count <= buffer.size else {
            throw VulkanError.invalidArgument("upload of \(bytes.count) bytes at offset \(offset) overflows a buffer of \(buffer.size) bytes")
        }
        guard bytes.count > 0, let src = bytes.baseAddress else { return }
        if let dst = buffer.mappedPointer {
            (dst + offset).copyMemory(from: src, byteCount: bytes.count)
            return
        }
        try staged(total: bytes.count) { staging, done, n, stream in
            staging.mappedPointer!.copyMemory(from: src + done, byteCount: n)
            try stream.copy(from: staging.whole.prefix(n), to: BufferRange(buffer: buffer, offset: offset + done, size: n))
        }
    }

    /// Copies `bytes.count` bytes of `buffer` from `offset` to host memory.
    public func download(_ buffer: Buffer, offset: Int = 0, into bytes: UnsafeMutableRawBufferPointer) throws {
        try checkOwnership(buffer)
        guard offset >= 0, offset + bytes.count <= buffer.size else {
            throw VulkanError.invalidArgument("download of \(bytes.count) bytes at offset \(offset) overflows a buffer of \(buffer.size) bytes")
        }
        guard bytes.count > 0, let dst = bytes.baseAddress else { return }
        if let src = buffer.mappedPointer {
            dst.copyMemory(from: src + offset, byteCount: bytes.count)
            return
        }
        var pending: [(Int, Int)] = []
        var stagingRef: Buffer?
        try staged(total: bytes.count) { staging, done, n, stream in
            try stream.copy(from: BufferRange(buffer: buffer, offset: offset + done, size: n), to: staging.whole.prefix(n))
            pending = [(done, n)]
            stagingRef = staging
        } after: {
            for (done, n) in pending { (dst + done).copyMemory(from: stagingRef!.mappedPointer!, byteCount: n) }
        }
    }

    public func download<T>(_ buffer: Buffer, as type: T.Type = T.self, count: Int? = nil) throws -> [T] {
        let n = count ?? buffer.size / MemoryLayout<T>.stride
        return try [T](unsafeUninitializedCapacity: n) { out, initialized in
            try download(buffer, into: UnsafeMutableRawBufferPointer(out))
            initialized = n
        }
    }

    /// Runs a transfer through a host-visible staging buffer in chunks of at most 64 MiB.
    private func staged(total: Int, _ body: (Buffer, Int, Int, CommandStream) throws -> Void,
                        after: () -> Void = {}) throws {
        let chunk = min(total, 64 << 20)
        let staging = try makeBuffer(bytes: chunk, kind: .staging)
        var done = 0
        while done < total {
            let n = min(chunk, total - done)
            let stream = try CommandStream(device: self)
            try body(staging, done, n, stream)
            try stream.finish()
            after()
            done += n
        }
    }

    func checkOwnership(_ buffer: Buffer) throws {
        guard buffer.device === self else {
            throw VulkanError.invalidArgument("Buffer belongs to device '\(buffer.device.name)', not '\(name)'")
        }
    }
}

extension BufferRange {
    func prefix(_ n: Int) -> BufferRange { BufferRange(buffer: buffer, offset: offset, size: min(n, size)) }
}
