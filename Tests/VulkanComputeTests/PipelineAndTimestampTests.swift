import Foundation
import ProbeShaders
import ProbeTestSupport
import Testing
@testable import VulkanCompute

@Suite struct PipelineCacheTests {
    @Test func pipelinesAreCreatedOnceAndTheDiskCacheIsReused() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var fileURL: URL?
        do {
            let device = try makeTestDevice { $0.pipelineCacheDirectory = dir }
            #expect(device.pipelines.loadedBytes == 0)
            let k1 = try unaryKernel(device, op: 0)
            let k2 = try unaryKernel(device, op: 0)
            #expect(k1.pipeline == k2.pipeline, "same descriptor, same pipeline")
            _ = try unaryKernel(device, op: 4)
            #expect(device.pipelines.pipelineCount == 2)
            #expect(device.pipelines.save())
            fileURL = device.pipelines.fileURL
            expectNoValidationMessages(device)
        }
        let file = try #require(fileURL)
        #expect(FileManager.default.fileExists(atPath: file.path))
        #expect(file.lastPathComponent.contains("pipelines-"))
        let device = try makeTestDevice { $0.pipelineCacheDirectory = dir }
        #expect(device.pipelines.loadedBytes > 0, "the second device starts from the saved cache")
        _ = try unaryKernel(device, op: 0)
        _ = try unaryKernel(device, op: 4)
        // lavapipe's cache holds only its 32-byte header (it caches nothing); drivers that store
        // pipelines report hits through VK 1.3 creation feedback.
        if device.pipelines.loadedBytes > 32, device.capabilities.apiVersion.compare("1.3", options: .numeric) != .orderedAscending {
            #expect(device.pipelines.driverCacheHits == 2, "the driver found both pipelines in the loaded cache")
        }
        expectNoValidationMessages(device)
    }

    @Test func foreignCacheFileIsIgnored() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let probe = try makeTestDevice { $0.pipelineCacheDirectory = dir }
        let file = try #require(probe.pipelines.fileURL)
        try Data((0..<100).map { UInt8($0) }).write(to: file)
        let device = try makeTestDevice { $0.pipelineCacheDirectory = dir }
        #expect(device.pipelines.loadedBytes == 0)
        _ = try unaryKernel(device)
        expectNoValidationMessages(device)
        expectNoValidationMessages(probe)
    }
}

@Suite struct TimestampTests {
    @Test func timestampsIncreaseAndMeasureRegions() throws {
        let device = try makeTestDevice()
        try #require(device.capabilities.timestamps)
        let n = 1 << 18
        let x = try device.makeBuffer(bytes: n * 4), y = try device.makeBuffer(bytes: n * 4)
        let k = try unaryKernel(device, localSize: 256)
        let stream = try CommandStream(device: device, maxCommandsPerSubmit: 3)
        try stream.fill(x.whole, with: 0)
        for r in 0..<3 {
            try stream.beginRegion("r\(r)")
            for _ in 0...r {
                try stream.dispatch(k, [.read(x), .write(y)], push: affinePush(n: n, alpha: 1, beta: 1), groups: (64, 1, 1))
                try stream.dispatch(k, [.read(y), .write(x)], push: affinePush(n: n, alpha: 1, beta: 1), groups: (64, 1, 1))
            }
            try stream.endRegion("r\(r)")
        }
        try stream.finish()
        let values = stream.lastTimestampValues
        #expect(values.count == 6)
        for (a, b) in zip(values, values.dropFirst()) { #expect(a <= b, "timestamps are monotonic: \(values)") }
        #expect(stream.timings.map(\.label) == ["r0", "r1", "r2"])
        #expect(stream.timings.allSatisfy { $0.nanoseconds > 0 })
        #expect(try device.download(x, as: Float.self, count: 1) == [12])
        // Regions are per finish(): the stream is reusable.
        try stream.beginRegion("again")
        try stream.dispatch(k, [.read(x), .write(y)], push: affinePush(n: n, alpha: 1, beta: 1), groups: (64, 1, 1))
        try stream.endRegion("again")
        try stream.finish()
        #expect(stream.timings.count == 1 && stream.nanoseconds("again")! > 0)
        #expect(throws: VulkanError.self) { try stream.endRegion("never-begun") }
        expectNoValidationMessages(device)
    }
}
