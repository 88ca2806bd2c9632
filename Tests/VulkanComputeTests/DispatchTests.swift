import Foundation
import ProbeTestSupport
import Testing
@testable import VulkanCompute

@Suite struct DispatchTests {
    /// Each kernel reads what the previous one wrote: a barrier between every pair, none elsewhere,
    /// and (with synchronization validation on) no hazard reported.
    @Test(arguments: [1, 2, 256])
    func dependentChainGetsExactlyTheBarriersItNeeds(chunk: Int) throws {
        let device = try makeTestDevice()
        let n = 10_007
        let input = (0..<n).map { Float($0 % 97) - 48 }
        let buffers = try (0..<4).map { _ in try device.makeBuffer(bytes: n * 4) }
        try input.withUnsafeBytes { try device.upload($0, to: buffers[0]) }
        let affine = try unaryKernel(device, op: 0), relu = try unaryKernel(device, op: 4)
        let stream = try CommandStream(device: device, maxCommandsPerSubmit: chunk)
        var expected = input
        let steps = 9
        for s in 0..<steps {
            let src = buffers[s % 3], dst = buffers[(s + 1) % 3]
            let alpha = Float(s % 4) * 0.5 - 0.75, beta = Float(s) * 0.125
            let useRelu = s % 2 == 1
            try stream.dispatch(useRelu ? relu : affine, [.read(src), .write(dst)], push: affinePush(n: n, alpha: alpha, beta: beta), groups: (7, 1, 1))
            expected = expected.map { useRelu ? max(alpha * $0 + beta, 0) : alpha * $0 + beta }
        }
        try stream.finish()
        #expect(stream.dispatchCount == steps)
        #expect(stream.barrierCount == steps - 1)
        #expect(stream.submitCount == (chunk >= steps ? 1 : (steps + chunk - 1) / chunk))
        let out: [Float] = try device.download(buffers[steps % 3])
        #expect(out == expected, "fp32 affine and ReLU are exact: every element must match")
        expectNoValidationMessages(device)
    }

    /// A long recording without a finish() in between: each chunk's descriptor sets are freed (its
    /// pools reset and reused) once its fence signals, so the pools stay at the chunks that can be
    /// in flight — Mesa 25's lavapipe maps a page per set and crashed at the process's map limit
    /// when sets piled up until finish(). The chain's values stay exact.
    @Test func longRecordingsRecycleDescriptorSets() throws {
        let device = try makeTestDevice()
        let n = 1000
        let input = (0..<n).map { Float($0 % 31) - 15 }
        let buffers = try (0..<2).map { _ in try device.makeBuffer(bytes: n * 4) }
        try input.withUnsafeBytes { try device.upload($0, to: buffers[0]) }
        let affine = try unaryKernel(device, op: 0)
        let stream = try CommandStream(device: device, maxCommandsPerSubmit: 4)
        var expected = input
        let steps = 400
        for s in 0..<steps {
            let beta: Float = s % 2 == 0 ? 1 : -1
            try stream.dispatch(affine, [.read(buffers[s % 2]), .write(buffers[(s + 1) % 2])], push: affinePush(n: n, alpha: 1, beta: beta), groups: (2, 1, 1))
            expected = expected.map { $0 + beta }
        }
        #expect(stream.submitCount >= steps / 4 - 1)
        #expect(stream.descriptorPoolCount <= stream.maxInFlight + 2, "\(stream.descriptorPoolCount) pools for \(stream.submitCount) chunks")
        try stream.finish()
        let out: [Float] = try device.download(buffers[steps % 2])
        #expect(out == expected)
        expectNoValidationMessages(device)
    }

    /// The same chain with its barriers left out on purpose: lavapipe still computes it right (it
    /// runs dispatches in order), but the synchronization validation `make test` runs under
    /// reports the read-after-write hazards a GPU would turn into wrong numbers — so a missing
    /// barrier anywhere in the suite fails it.
    @Test func aMissingBarrierIsReported() throws {
        let device = try makeTestDevice()
        guard let log = device.validationLog else { return }   // make test requires the layer (VKPROBE_REQUIRE_VALIDATION)
        let n = 4096
        let buffers = try (0..<3).map { _ in try device.makeBuffer(bytes: n * 4) }
        try [Float](repeating: 1, count: n).withUnsafeBytes { try device.upload($0, to: buffers[0]) }
        let affine = try unaryKernel(device, op: 0)
        let stream = try CommandStream(device: device)
        stream.omitBarriersForTesting = true
        for s in 0..<4 {
            try stream.dispatch(affine, [.read(buffers[s % 3]), .write(buffers[(s + 1) % 3])], push: affinePush(n: n, alpha: 2, beta: 1), groups: (4, 1, 1))
        }
        try stream.finish()
        #expect(stream.barrierCount == 0)
        let hazards = log.messages.filter { $0.id.contains("SYNC-HAZARD") || $0.text.contains("SYNC-HAZARD") }
        #expect(!hazards.isEmpty, "synchronization validation reported no hazard for a chain without barriers: \(log.messages.prefix(3))")
        log.clear()
    }

    @Test func independentDispatchesNeedNoBarrier() throws {
        let device = try makeTestDevice()
        let n = 1000
        let x = try device.makeBuffer((0..<n).map { Float($0) })
        let outs = try (0..<5).map { _ in try device.makeBuffer(bytes: n * 4) }
        let k = try unaryKernel(device)
        let stream = try CommandStream(device: device)
        for (i, o) in outs.enumerated() {
            try stream.dispatch(k, [.read(x), .write(o)], push: affinePush(n: n, alpha: Float(i), beta: 1), groups: (4, 1, 1))
        }
        try stream.finish()
        #expect(stream.barrierCount == 0, "reads of one input and writes to distinct outputs do not conflict")
        for (i, o) in outs.enumerated() {
            let y: [Float] = try device.download(o)
            #expect(y == (0..<n).map { Float(i) * Float($0) + 1 })
        }
        // Write-after-read on the input needs a barrier; disjoint ranges of one buffer do not.
        let halves = try [x.range(offset: 0, size: n * 2), x.range(offset: n * 2, size: n * 2)]
        try stream.dispatch(k, [.read(halves[0]), .write(outs[0].whole)], push: affinePush(n: n / 2, alpha: 1, beta: 0), groups: (1, 1, 1))
        try stream.dispatch(k, [.read(halves[1]), .write(try outs[1].range(offset: 0, size: n * 2))], push: affinePush(n: n / 2, alpha: 1, beta: 0), groups: (1, 1, 1))
        #expect(stream.barrierCount == 0)
        try stream.dispatch(k, [.read(outs[2]), .write(halves[0])], push: affinePush(n: n / 2, alpha: 1, beta: 0), groups: (1, 1, 1))
        #expect(stream.barrierCount == 1, "writing what an earlier dispatch read is a hazard")
        try stream.finish()
        expectNoValidationMessages(device)
    }

    @Test func specializationConstantsChangeBehaviour() throws {
        let device = try makeTestDevice()
        let values: [Float] = [-3, -1, -0.5, 0, 0.5, 2, 7]
        let x = try device.makeBuffer(values)
        let y0 = try device.makeBuffer(bytes: values.count * 4), y1 = try device.makeBuffer(bytes: values.count * 4)
        let identity = try unaryKernel(device, op: 0, localSize: 32)
        let relu = try unaryKernel(device, op: 4, localSize: 128)
        #expect(device.pipelines.pipelineCount == 2, "two specializations, two pipelines")
        let stream = try CommandStream(device: device)
        try stream.dispatch(identity, [.read(x), .write(y0)], push: affinePush(n: values.count, alpha: 2, beta: 0), groups: (1, 1, 1))
        try stream.dispatch(relu, [.read(x), .write(y1)], push: affinePush(n: values.count, alpha: 2, beta: 0), groups: (1, 1, 1))
        try stream.finish()
        #expect(try device.download(y0, as: Float.self) == values.map { 2 * $0 })
        #expect(try device.download(y1, as: Float.self) == values.map { max(2 * $0, 0) })
        expectNoValidationMessages(device)
    }

    /// A tensor larger than maxStorageBufferRange: binding it whole is refused with the limit named;
    /// binding it in chunks works.
    @Test func oversizedBindingsAreRefusedOrSplit() throws {
        let device = try makeTestDevice()
        let limit = device.capabilities.maxStorageBufferRange
        let n = limit / 4 + 1000
        let x = try device.makeBuffer(bytes: n * 4), y = try device.makeBuffer(bytes: n * 4)
        let values = (0..<n).map { Float($0 & 1023) }
        try values.withUnsafeBytes { try device.upload($0, to: x) }
        let k = try unaryKernel(device, localSize: 256)
        let stream = try CommandStream(device: device)
        do {
            try stream.dispatch(k, [.read(x), .write(y)], push: affinePush(n: n, alpha: 1, beta: 0), groups: (1, 1, 1))
            Issue.record("expected bindingTooLarge")
        } catch let e as VulkanError {
            guard case let .bindingTooLarge(bytes, l, _) = e else { Issue.record("wrong error \(e)"); return }
            #expect(bytes == n * 4 && l == limit)
            #expect("\(e)".contains("maxStorageBufferRange"))
        }
        let xs = x.whole.chunks(maxBytes: limit), ys = y.whole.chunks(maxBytes: limit)
        #expect(xs.count == 2 && xs.allSatisfy { $0.size <= limit })
        for (a, b) in zip(xs, ys) {
            try stream.dispatch(k, [.read(a), .write(b)], push: affinePush(n: a.size / 4, alpha: 3, beta: -1), groups: (1024, 1, 1))
        }
        try stream.finish()
        let out: [Float] = try device.download(y)
        #expect(out.count == n)
        #expect(zip(out, values).allSatisfy { $0 == 3 * $1 - 1 })
        // Misaligned offsets are refused, not silently rounded.
        #expect(throws: VulkanError.self) {
            try stream.dispatch(k, [.read(try x.range(offset: 4, size: 64)), .write(y)], push: affinePush(n: 16, alpha: 1, beta: 0), groups: (1, 1, 1))
        }
        expectNoValidationMessages(device)
    }

    @Test func fillCopyAndWrongArgumentsAreChecked() throws {
        let device = try makeTestDevice()
        let a = try device.makeBuffer(bytes: 64), b = try device.makeBuffer(bytes: 64)
        let stream = try CommandStream(device: device)
        try stream.fill(a.whole, with: Float.nan.bitPattern)
        try stream.copy(from: a.whole, to: b.whole)
        try stream.finish()
        #expect(stream.barrierCount == 1)
        #expect(try device.download(b, as: Float.self).allSatisfy { $0.isNaN })
        let k = try unaryKernel(device)
        #expect(throws: VulkanError.self) { try stream.dispatch(k, [.read(a)], push: affinePush(n: 1, alpha: 1, beta: 0), groups: (1, 1, 1)) }
        #expect(throws: VulkanError.self) { try stream.dispatch(k, [.read(a), .write(b)], push: [1], groups: (1, 1, 1)) }
        #expect(throws: VulkanError.self) { try stream.dispatch(k, [.read(a), .write(b)], push: affinePush(n: 1, alpha: 1, beta: 0), groups: (1 << 30, 1, 1)) }
        // A buffer of another device is refused.
        let other = try makeTestDevice()
        let foreign = try other.makeBuffer(bytes: 64)
        #expect(throws: VulkanError.self) { try stream.dispatch(k, [.read(foreign), .write(b)], push: affinePush(n: 1, alpha: 1, beta: 0), groups: (1, 1, 1)) }
        try stream.finish()
        expectNoValidationMessages(device)
        expectNoValidationMessages(other)
    }
}
