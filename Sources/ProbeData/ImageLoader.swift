import Foundation

/// What a dataset's images go through before the backbone.
public enum ImageTransform: Sendable, CustomStringConvertible {
    /// Resize + center crop (upstream's evaluation transform).
    case eval(EvalTransform)
    /// RandomResizedCrop + flip (upstream's training transform), seeded per (seed, epoch or view, image).
    case train(TrainTransform, seed: UInt64)

    public var size: Int {
        switch self { case let .eval(t): return t.size; case let .train(t, _): return t.size }
    }
    public var description: String {
        switch self {
        case let .eval(t): return t.squash ? "eval squashed to \(t.size)×\(t.size)" : "eval \(t.resizeTo)→\(t.size)"
        case let .train(t, seed): return "train RandomResizedCrop(\(t.size), scale \(t.scale.lowerBound)–\(t.scale.upperBound)\(t.torchvisionRetries ? ", torchvision's" : ""))\(t.flip ? "+flip" : "") seed \(seed)"
        }
    }
}

/// A dataset's images through a transform, loaded by worker threads: each worker decodes and
/// transforms whole images with its own decoder, at most `prefetch` batches ahead of the one being
/// used, so memory stays bounded whatever the dataset size. Results depend only on the seed,
/// epoch and index, never on thread timing.
///
/// With `views` > 1 the source holds `views` augmented copies of every image, view-major: index
/// `v · S + i` is view v of image i (the cached-views remedy for probing with augmentation).
public final class DatasetImages: ImageSource, @unchecked Sendable {
    public let dataset: ImageDataset
    public let transform: ImageTransform
    public let normalization: Normalization
    public let views: Int
    public let workers: Int
    public let prefetch: Int

    public init(dataset: ImageDataset, transform: ImageTransform, normalization: Normalization, views: Int = 1,
                workers: Int = ProcessInfo.processInfo.activeProcessorCount, prefetch: Int = 3) throws {
        guard views >= 1, workers >= 1, prefetch >= 1 else { throw DataError("--views, --workers and prefetch must be at least 1") }
        self.dataset = dataset; self.transform = transform; self.normalization = normalization
        self.views = views; self.workers = workers; self.prefetch = prefetch
    }

    public var count: Int { dataset.count * views }
    public var height: Int { transform.size }
    public var width: Int { transform.size }
    public var description: String {
        "\(dataset.description) (\(dataset.count) images, \(transform)\(views > 1 ? ", \(views) views" : ""))"
    }
    public func label(_ i: Int) -> Int32 { dataset.label(i % dataset.count) }

    /// Image `index` (a view of a dataset image) decoded and transformed.
    public func transformed(_ index: Int, epoch: Int, decoder: ImageDecoder) throws -> RGBImage {
        let S = dataset.count, image = index % S, view = index / S
        let rgb = try dataset.image(image, decoder: decoder)
        switch transform {
        case let .eval(t): return t(rgb)
        case let .train(t, seed):
            var rng = AugmentRNG(seed: seed, epoch: epoch * views + view, index: image)
            return t(rgb, &rng)
        }
    }

    public func load(_ batches: [[Int]], epoch: Int) -> ImageBatchStream {
        let per = height * width * 3
        let loader = PrefetchLoader(batches: batches, bytesPerItem: per, workers: workers, prefetch: prefetch) { [self] index, decoder, into in
            let img = try transformed(index, epoch: epoch, decoder: decoder)
            img.pixels.withUnsafeBufferPointer { into.baseAddress!.update(from: $0.baseAddress!, count: per) }
        }
        return ImageBatchStream(next: { [self] in
            guard let (indices, bytes, failures, warnings) = loader.next() else { return nil }
            let skipped = failures.map { f -> SkippedImage in
                let name = dataset.name(f.0 % dataset.count)
                return SkippedImage(index: f.0, name: name, reason: SkippedImage.reason("\(f.1)", name: name))
            }
            let warned = warnings.map { SkippedImage(index: $0.0, name: dataset.name($0.0 % dataset.count), reason: $0.1) }
            return ImageBatch(indices: indices, labels: indices.map(label), pixels: .rgb8(bytes), skipped: skipped, warnings: warned)
        }, stop: { loader.cancel() })
    }

    /// Decodes every image once (worker threads) and returns the ones that fail — `--strict`'s
    /// up-front check.
    public func unreadable() -> [SkippedImage] {
        let S = dataset.count
        let lock = NSLock()
        var bad: [SkippedImage] = []
        let n = min(workers, S)
        DispatchQueue.concurrentPerform(iterations: n) { w in
            let decoder = ImageDecoder()
            for i in stride(from: w, to: S, by: n) {
                do { _ = try dataset.image(i, decoder: decoder) } catch {
                    let name = dataset.name(i)
                    lock.lock(); bad.append(SkippedImage(index: i, name: name, reason: SkippedImage.reason("\(error)", name: name))); lock.unlock()
                }
            }
        }
        return bad.sorted { $0.index < $1.index }
    }
}

/// Worker threads filling batches of fixed-size items in order, bounded to `prefetch` batches
/// beyond the one last delivered. An item that throws is left out of its batch and reported.
final class PrefetchLoader: @unchecked Sendable {
    typealias Produce = (_ index: Int, _ decoder: ImageDecoder, _ into: UnsafeMutableBufferPointer<UInt8>) throws -> Void
    let batches: [[Int]]
    let bytesPerItem: Int
    let prefetch: Int
    let produce: Produce
    let cond = NSCondition()
    // Guarded by `cond`.
    var nextBatch = 0, nextItem = 0     // the next item to claim
    var delivered = 0                   // batches handed out
    var buffers: [Int: UnsafeMutableBufferPointer<UInt8>] = [:]
    var remaining: [Int: Int] = [:]     // items still being produced, per batch
    var failures: [Int: [(Int, Error)]] = [:]
    var warnings: [Int: [(Int, String)]] = [:]     // items decoded through a warning, per batch
    var cancelled = false
    var running = 0

    init(batches: [[Int]], bytesPerItem: Int, workers: Int, prefetch: Int, produce: @escaping Produce) {
        self.batches = batches; self.bytesPerItem = bytesPerItem; self.prefetch = prefetch; self.produce = produce
        let total = batches.reduce(0) { $0 + $1.count }
        let n = max(1, min(workers, total))
        running = n
        for _ in 0..<n {
            let t = Thread { [self] in work() }
            t.stackSize = 1 << 22
            t.start()
        }
    }

    /// Claims the next item (allocating its batch's buffer first), or nil when done or cancelled.
    private func claim() -> (batch: Int, position: Int)? {
        cond.lock(); defer { cond.unlock() }
        while true {
            if cancelled { return nil }
            while nextBatch < batches.count && nextItem >= batches[nextBatch].count { nextBatch += 1; nextItem = 0 }
            if nextBatch >= batches.count { return nil }
            if nextBatch < delivered + prefetch { break }
            cond.wait()
        }
        let b = nextBatch, p = nextItem
        if p == 0 {
            buffers[b] = .allocate(capacity: max(1, batches[b].count * bytesPerItem))
            remaining[b] = batches[b].count
        }
        nextItem += 1
        return (b, p)
    }

    private func work() {
        let decoder = ImageDecoder()
        while let (b, p) = claim() {
            cond.lock(); let buffer = buffers[b]!; cond.unlock()
            let slot = UnsafeMutableBufferPointer(rebasing: buffer[(p * bytesPerItem)..<((p + 1) * bytesPerItem)])
            var failure: Error?
            decoder.lastWarning = nil
            do { try produce(batches[b][p], decoder, slot) } catch { failure = error }
            cond.lock()
            if let failure { failures[b, default: []].append((p, failure)) } else if let w = decoder.lastWarning { warnings[b, default: []].append((p, w)) }
            remaining[b]! -= 1
            cond.broadcast()
            cond.unlock()
        }
        cond.lock(); running -= 1; cond.broadcast(); cond.unlock()
    }

    /// The next batch in order: indices and bytes of the items that loaded, the failures
    /// (source index, error) and the items decoded through warnings; nil after the last.
    func next() -> ([Int], [UInt8], [(Int, Error)], [(Int, String)])? {
        cond.lock()
        // Empty batches are never claimed: hand them out directly.
        while delivered < batches.count && !(batches[delivered].isEmpty || remaining[delivered] == 0) {
            if cancelled { cond.unlock(); return nil }
            cond.wait()
        }
        guard delivered < batches.count else { cond.unlock(); return nil }
        let b = delivered
        let buffer = buffers.removeValue(forKey: b)
        let failed = (failures.removeValue(forKey: b) ?? []).sorted { $0.0 < $1.0 }
        let warned = (warnings.removeValue(forKey: b) ?? []).sorted { $0.0 < $1.0 }
        remaining[b] = nil
        delivered += 1
        cond.broadcast()
        cond.unlock()
        let idx = batches[b]
        let bad = Set(failed.map(\.0))
        var bytes: [UInt8] = []
        bytes.reserveCapacity((idx.count - bad.count) * bytesPerItem)
        var kept: [Int] = []
        if let buffer {
            for p in idx.indices where !bad.contains(p) {
                bytes.append(contentsOf: buffer[(p * bytesPerItem)..<((p + 1) * bytesPerItem)])
                kept.append(idx[p])
            }
            buffer.deallocate()
        }
        return (kept, bytes, failed.map { (idx[$0.0], $0.1) }, warned.map { (idx[$0.0], $0.1) })
    }

    /// Stops the workers after their current item and frees what they produced.
    func cancel() {
        cond.lock()
        cancelled = true
        cond.broadcast()
        while running > 0 { cond.wait() }
        for (_, b) in buffers { b.deallocate() }
        buffers = [:]
        cond.unlock()
    }

    deinit { cancel() }
}
