import Foundation
import ProbeTestSupport
import Testing
@testable import VulkanCompute

@Suite struct MemoryTests {
    @Test func subAllocatesAlignedAndReuses() throws {
        let device = try makeTestDevice()
        let align = device.memory.alignment
        #expect(align % device.capabilities.minStorageBufferOffsetAlignment == 0)
        let blocksBefore = device.memory.blockCount
        var buffers = try [1, 3, 17, 1000, 4096, 12345].map { try device.makeBuffer(bytes: $0) }
        for b in buffers { #expect(b.offset % align == 0) }
        // All small buffers share one block: one vkAllocateMemory, not one per tensor.
        #expect(device.memory.blockCount == blocksBefore + 1)
        #expect(Set(buffers.map { ObjectIdentifier($0.block) }).count == 1)
        // No two live buffers overlap.
        let spans = buffers.map { ($0.offset, $0.offset + $0.reserved) }.sorted { $0.0 < $1.0 }
        for (a, b) in zip(spans, spans.dropFirst()) { #expect(a.1 <= b.0) }
        // Freed space is reused: the next buffer of the same size lands at the freed offset.
        let freedOffset = buffers[2].offset
        buffers.remove(at: 2)
        let again = try device.makeBuffer(bytes: 17)
        #expect(again.offset == freedOffset)
        // Freeing everything coalesces back into one free range.
        let used = device.memory.usedBytes
        buffers.removeAll()
        #expect(device.memory.usedBytes == used - [1, 3, 1000, 4096, 12345].map { ($0 + align - 1) / align * align }.reduce(0, +))
        expectNoValidationMessages(device)
    }

    @Test func largeRequestsGetTheirOwnBlockAndReturnIt() throws {
        let device = try makeTestDevice { $0.blockSize = 1 << 20 }
        let before = device.memory.allocatedBytes
        do {
            let big = try device.makeBuffer(bytes: 3 << 20)
            #expect(big.offset == 0)
            #expect(device.memory.allocatedBytes == before + (3 << 20))
        }
        #expect(device.memory.allocatedBytes == before, "a dedicated block goes back to the driver when freed")
        expectNoValidationMessages(device)
    }

    @Test func exhaustionThrowsNamingSizeAndHeap() throws {
        let device = try makeTestDevice { $0.memoryBudget = 4 << 20; $0.blockSize = 1 << 20 }
        var held: [Buffer] = []
        do {
            for _ in 0..<64 { held.append(try device.makeBuffer(bytes: 600 << 10)) }
            Issue.record("expected exhaustion")
        } catch let e as VulkanError {
            guard case let .outOfMemory(bytes, heap, _) = e else { Issue.record("wrong error \(e)"); return }
            #expect(bytes == 600 << 10)
            #expect(heap.contains("heap"))
            #expect("\(e)".contains("614400 bytes"))
        }
        #expect(!held.isEmpty)
        // After freeing, allocation succeeds again.
        held.removeAll()
        _ = try device.makeBuffer(bytes: 600 << 10)
        expectNoValidationMessages(device)
    }

    @Test func impossibleAllocationThrows() throws {
        let device = try makeTestDevice()
        let heap = device.capabilities.memoryHeaps.map(\.size).max()!
        do {
            _ = try device.makeBuffer(bytes: heap + (1 << 30))
            Issue.record("expected an error")
        } catch {
            let text = "\(error)"
            #expect(text.contains("\(heap + (1 << 30)) bytes"), "names the size: \(text)")
            #expect(text.contains("heap"), "names the heap: \(text)")
        }
        #expect(throws: VulkanError.self) { try device.makeBuffer(bytes: 0) }
        expectNoValidationMessages(device)
    }

    /// Round trips from 1 byte to beyond maxStorageBufferRange (129 MiB), through direct mapping
    /// and through staging copies (as on a discrete GPU).
    @Test(arguments: [true, false])
    func uploadDownloadRoundTrips(direct: Bool) throws {
        let device = try makeTestDevice { $0.directHostAccess = direct }
        for size in [1, 3, 4, 255, 4097, 1 << 20, (129 << 20) + 5] {
            var bytes = [UInt8](repeating: 0, count: size)
            var state: UInt32 = 0x9E3779B9 &* UInt32(size)
            for i in 0..<size { state = state &* 1664525 &+ 1013904223; bytes[i] = UInt8(truncatingIfNeeded: state >> 24) }
            let buffer = try device.makeBuffer(bytes: size)
            #expect(buffer.isHostVisible == direct)
            try bytes.withUnsafeBytes { try device.upload($0, to: buffer) }
            var back = [UInt8](repeating: 0xAB, count: size)
            try back.withUnsafeMutableBytes { try device.download(buffer, into: $0) }
            #expect(back == bytes, "round trip of \(size) bytes")
            // Partial download from an offset.
            if size > 10 {
                var part = [UInt8](repeating: 0, count: 7)
                try part.withUnsafeMutableBytes { try device.download(buffer, offset: 3, into: $0) }
                #expect(part == Array(bytes[3..<10]))
            }
        }
        let small = try device.makeBuffer(bytes: 8)
        #expect(throws: VulkanError.self) { try [UInt8](repeating: 0, count: 9).withUnsafeBytes { try device.upload($0, to: small) } }
        expectNoValidationMessages(device)
    }
}
