import Foundation
import ProbeTestSupport
import Testing
@testable import ProbeData

@Suite struct ImageLoaderTests {
    func folder(_ perClass: Int = 5) throws -> URL {
        let root = try temporaryDirectory("loader")
        try writeImageFolder(root, splits: [("train", perClass)], classes: ["a", "b", "c"], size: 40, seed: 1)
        return root.appendingPathComponent("train")
    }

    func bytes(_ source: DatasetImages, _ batches: [[Int]], epoch: Int) throws -> [[UInt8]] {
        let stream = source.load(batches, epoch: epoch)
        var out: [[UInt8]] = []
        while let b = try stream.next() {
            guard case let .rgb8(px) = b.pixels else { Issue.record("expected bytes"); return [] }
            out.append(px)
        }
        return out
    }

    /// The same seed and epoch give the same pixels whatever the thread count and prefetch depth;
    /// another epoch gives other crops; eval pixels equal the transform applied directly.
    @Test func deterministicWhateverTheThreads() throws {
        let ds = try ImageDatasets.imageFolder(try folder())
        let batches = [[0, 4, 7], [1, 2], [14, 3, 9, 11], [5]]
        let train = ImageTransform.train(TrainTransform(size: 24), seed: 5)
        let one = try bytes(DatasetImages(dataset: ds, transform: train, normalization: .imageNet, workers: 1, prefetch: 1), batches, epoch: 2)
        let many = try bytes(DatasetImages(dataset: ds, transform: train, normalization: .imageNet, workers: 4, prefetch: 3), batches, epoch: 2)
        #expect(one == many)
        #expect(one.map(\.count) == batches.map { $0.count * 24 * 24 * 3 })
        let other = try bytes(DatasetImages(dataset: ds, transform: train, normalization: .imageNet, workers: 4), batches, epoch: 3)
        #expect(other != one)
        let eval = try bytes(DatasetImages(dataset: ds, transform: .eval(EvalTransform(size: 24)), normalization: .imageNet, workers: 3), [[6, 13]], epoch: 0)
        let direct = try [6, 13].flatMap { EvalTransform(size: 24)(try ds.image($0, decoder: ImageDecoder())).pixels }
        #expect(eval == [direct])
    }

    /// Workers never run more than `prefetch` batches ahead of the consumer.
    @Test func prefetchIsBounded() throws {
        final class Watch: @unchecked Sendable { let lock = NSLock(); var delivered = 0; var maxAhead = 0 }
        let watch = Watch()
        let batches = (0..<12).map { b in Array((b * 4)..<((b + 1) * 4)) }
        let loader = PrefetchLoader(batches: batches, bytesPerItem: 8, workers: 3, prefetch: 2) { index, _, into in
            watch.lock.lock()
            watch.maxAhead = max(watch.maxAhead, index / 4 - watch.delivered)
            watch.lock.unlock()
            usleep(2000)
            for i in 0..<8 { into[i] = UInt8(truncatingIfNeeded: index * 8 + i) }
        }
        var seen = 0
        while let (indices, bytes, failures, _) = loader.next() {
            #expect(indices == batches[seen] && failures.isEmpty)
            #expect(bytes == indices.flatMap { idx in (0..<8).map { UInt8(truncatingIfNeeded: idx * 8 + $0) } })
            seen += 1
            watch.lock.lock(); watch.delivered = seen; watch.lock.unlock()
            usleep(5000)   // a slow consumer: workers must wait, not run ahead
        }
        #expect(seen == 12)
        #expect(watch.maxAhead <= 2, "workers ran \(watch.maxAhead) batches ahead with prefetch 2")
    }

    /// Unreadable files are left out of their batch and named; CMYK and 1×1 images load, as with
    /// PIL + torchvision; `unreadable()` (--strict) lists exactly the unreadable ones.
    @Test func badFilesAreSkippedAndNamed() throws {
        let dir = try folder(2)
        let (unreadable, odd) = try addBadFiles(to: dir.appendingPathComponent("a"))
        let ds = try ImageDatasets.imageFolder(dir)
        #expect(ds.count == 6 + unreadable.count + odd.count)
        let source = try DatasetImages(dataset: ds, transform: .eval(EvalTransform(size: 16)), normalization: .imageNet, workers: 2)
        let stream = source.load([Array(0..<ds.count)], epoch: 0)
        let batch = try #require(try stream.next())
        #expect(Set(batch.skipped.map { URL(fileURLWithPath: $0.name).lastPathComponent }) == Set(unreadable))
        #expect(batch.count == ds.count - unreadable.count)
        #expect(batch.skipped.allSatisfy { !$0.reason.isEmpty })
        #expect(Set(source.unreadable().map { URL(fileURLWithPath: $0.name).lastPathComponent }) == Set(unreadable))
        for name in odd {
            let i = try #require((0..<ds.count).first { ds.name($0).hasSuffix("/" + name) })
            #expect(batch.indices.contains(i), "\(name) should load")
        }
    }

    /// Dropping a stream early stops its workers (no hang, no leak of running threads).
    @Test func droppingAStreamStopsItsWorkers() throws {
        let ds = try ImageDatasets.imageFolder(try folder())
        let source = try DatasetImages(dataset: ds, transform: .eval(EvalTransform(size: 16)), normalization: .imageNet, workers: 3, prefetch: 1)
        for _ in 0..<5 {
            let stream = source.load((0..<15).map { [$0] }, epoch: 0)
            _ = try stream.next()
        }
    }
}
