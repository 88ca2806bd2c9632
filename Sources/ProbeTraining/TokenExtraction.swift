import Foundation
import Logging
import ProbeBackbones
import ProbeData
import ProbeKernels
import VulkanCompute

/// What an extraction is (`OUTPUT/extract.json`): a restarted extraction continues only when this
/// is unchanged, so that every shard of a token set comes from the same model and images.
public struct ExtractionManifest: Codable, Sendable, Equatable {
    public var model: String
    public var weights: String
    public var weightsBytes: Int
    public var precision: Precision
    public var images: String
    public var imageCount: Int
    public var taps: [String]
    public var shardSize: Int
    public var outputF16: Bool
    public var views: Int
    /// The probing protocol the images were prepared and probed under (runs over image datasets).
    public var probing: ProbingProtocol?
    /// What the extraction lost (written when it ends; not part of what must match to continue).
    public var unreadable: UnreadableReport?

    /// "setting: before X, now Y" for every difference.
    func differences(from saved: ExtractionManifest) -> [String] {
        let mirror = Mirror(reflecting: self), old = Mirror(reflecting: saved)
        return zip(mirror.children, old.children).compactMap { a, b in
            a.label == "unreadable" || "\(a.value)" == "\(b.value)" ? nil : "\(a.label ?? "?"): before \(Self.shown(b.value)), now \(Self.shown(a.value))"
        }
    }

    /// A setting as a user reads it: optionals unwrapped (`none` when absent), a protocol as its line.
    static func shown(_ value: Any) -> String {
        let m = Mirror(reflecting: value)
        if m.displayStyle == .optional { return m.children.first.map { shown($0.value) } ?? "none" }
        if let p = value as? ProbingProtocol { return "“\(p.line)”" }
        if let list = value as? [String] { return list.joined(separator: ",") }
        return "\(value)"
    }
}

/// Runs a frozen backbone over an image source and writes token shards for each tap
/// (`OUTPUT/<tap>/shard-NNNNN.safetensors`), one backbone pass per batch for every tap.
/// Interrupted, it keeps the completed shards and continues with the next.
public final class TokenExtraction {
    public let vit: VisionTransformer
    public let images: ImageSource
    public let output: URL
    public let manifest: ExtractionManifest
    public let taps: [TokenTap]
    public let batchSize: Int
    /// Progress lines and notes go through swift-log (info); the command line decides where.
    public var logger = Logger(label: "vkprobe.training")
    public func log(_ line: String) { logger.info("\(line)") }
    public var progress: ((String) -> Void)?
    /// Profile this many batches (from the second): the per-op table is logged and written to
    /// `OUTPUT/profile.json`.
    public var profileBatches = 0
    /// One of `ranks` processes (mpirun): this one extracts the shards k with k mod ranks = rank;
    /// the shards are whole files, so together they are the single-process extraction, and a
    /// restart with any number of processes redoes only the missing ones.
    public var rank = 0, ranks = 1
    /// How many unreadable images the split may have before the extraction stops, and its name in messages.
    public var unreadablePolicy = UnreadablePolicy.default
    public var split: String?
    /// What was lost over the whole token set (shards extracted before a restart included), once `run` ends.
    public private(set) var unreadable: UnreadableReport?
    /// Where this run's time went (wall clock), once `run` ends.
    public private(set) var lastTimes: ExtractionTimes?

    public init(vit: VisionTransformer, model: String, weightsPath: String, images: ImageSource, taps: [TokenTap], output: URL,
                batchSize: Int = 32, shardSize: Int = 4096, outputF16: Bool = true, views: Int = 1, protocol probing: ProbingProtocol? = nil) throws {
        guard views >= 1, images.count % views == 0 else { throw DataError("\(images.count) images are not \(views) views of a set") }
        guard batchSize > 0, shardSize > 0 else { throw DataError("--batch-size and --shard-size must be positive") }
        guard !taps.isEmpty else { throw DataError("no token sets asked for (--blocks)") }
        self.vit = vit; self.images = images; self.output = output; self.taps = taps; self.batchSize = batchSize
        let bytes = (try? FileManager.default.attributesOfItem(atPath: weightsPath)[.size] as? Int) ?? 0
        manifest = ExtractionManifest(model: model, weights: URL(fileURLWithPath: weightsPath).lastPathComponent, weightsBytes: bytes,
                                      precision: vit.precision, images: images.description, imageCount: images.count,
                                      taps: taps.map(\.description), shardSize: shardSize, outputF16: outputF16, views: views, probing: probing)
    }

    var shardCount: Int { (images.count + manifest.shardSize - 1) / manifest.shardSize }
    func shardPath(_ tap: TokenTap, _ k: Int) -> URL {
        output.appendingPathComponent(tap.description).appendingPathComponent(String(format: "shard-%05d.safetensors", k))
    }

    /// Extracts every shard not already complete; returns the directories of the token sets.
    @discardableResult
    public func run() throws -> [TokenTap: URL] {
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let manifestURL = output.appendingPathComponent("extract.json")
        if let data = try? Data(contentsOf: manifestURL) {
            guard let saved = try? RunFileJSON.decoder().decode(ExtractionManifest.self, from: data) else {
                throw DataError("\(manifestURL.path) is not an extraction manifest; use another --output")
            }
            let d = manifest.differences(from: saved)
            guard d.isEmpty else {
                throw DataError("\(output.path) holds another extraction — \(d.joined(separator: "; ")); use another --output (nothing was overwritten)")
            }
        } else {
            try writeManifest(manifest, to: manifestURL)
        }
        for tap in taps { try FileManager.default.createDirectory(at: output.appendingPathComponent(tap.description), withIntermediateDirectories: true) }
        let lay = vit.layout(height: images.height, width: images.width)
        let D = vit.config.embedDim
        let missing = (0..<shardCount).filter { k in !taps.allSatisfy { FileManager.default.fileExists(atPath: shardPath($0, k).path) } }
        if missing.count < shardCount { log("\(shardCount - missing.count) of \(shardCount) shards already extracted; continuing") }
        let todo = missing.filter { $0 % ranks == rank }
        // Unreadable images count over the split, those of shards extracted before a restart too.
        let tally = UnreadableTally(split: split ?? images.description, images: images.count / manifest.views, policy: unreadablePolicy)
        for k in 0..<shardCount where !missing.contains(k) {
            let u = ShardUnreadable.read(from: shardPath(taps[0], k).path)
            tally.add(skipped: u.skipped, warnings: u.warned)
        }
        try tally.check(read: images.count / manifest.views)
        let start = Date()
        var done = 0, left = 0   // images read, and those left out of this run's shards (every view)
        let total = todo.reduce(0) { $0 + min(manifest.shardSize, images.count - $1 * manifest.shardSize) }
        // Every batch of every shard still to do, in one stream so loading runs ahead across shards.
        var plan: [(shard: Int, last: Bool, indices: [Int])] = []
        for k in todo {
            let range = (k * manifest.shardSize)..<min((k + 1) * manifest.shardSize, images.count)
            for b in stride(from: range.lowerBound, to: range.upperBound, by: batchSize) {
                plan.append((k, b + batchSize >= range.upperBound, Array(b..<min(b + batchSize, range.upperBound))))
            }
        }
        let stream = images.load(plan.map(\.indices), epoch: 0)
        // After the final norm, `cls` is what upstream's `cls` reads: the pooled head's output
        // where the backbone has one (CLIP's projection, SigLIP's MAP), else the [CLS] token.
        let pooled = vit.pooledHead
        func emptyShards() -> [TokenTap: TokenShard] {
            Dictionary(uniqueKeysWithValues: taps.map { tap in
                let usesPooled = tap == .norm && pooled != nil
                return (tap, TokenShard(info: TokenSetInfo(model: manifest.model, tap: tap.description, cls: lay.cls || usesPooled, registers: lay.registers,
                                                           gridH: lay.gridH, gridW: lay.gridW, precision: vit.precision.rawValue,
                                                           views: manifest.views > 1 ? manifest.views : nil,
                                                           clsSource: usesPooled ? pooled!.rawValue : nil, clsDim: usesPooled ? vit.pooledWidth : nil,
                                                           clsInTokens: tap == .norm && vit.config.normTokensKeepCLS ? true : nil,
                                                           tokensProjected: tap == .norm && vit.projectTokens ? true : nil),
                                        dim: tap == .norm && vit.projectTokens ? vit.pooledWidth : D, f16: manifest.outputF16, clsToken: lay.cls))
            })
        }
        var shards = emptyShards()
        // Where the time goes (wall clock): waiting for decoded batches (the loader's threads run
        // ahead, so this is what decoding costs beyond the device's time), the upload, the forward
        // with the tokens' download, and writing shards.
        var waited = 0.0, uploading = 0.0, forwarding = 0.0, writing = 0.0
        func timed<T>(_ total: inout Double, _ body: () throws -> T) rethrows -> T {
            let t0 = Date()
            defer { total += Date().timeIntervalSince(t0) }
            return try body()
        }
        var profileStart: Date?
        let profileFirst = min(1, plan.count - 1)
        for (index, step) in plan.enumerated() {
            if profileBatches > 0 && index == profileFirst {
                try vit.ctx.finish()
                vit.ctx.stream.resetProfile()
                vit.ctx.stream.profiling = true
                profileStart = Date()
            }
            guard let batch = try timed(&waited, { try stream.next() }) else { throw DataError("\(images.description): the loader ended early") }
            for s in tally.add(skipped: batch.skipped, warnings: batch.warnings) { log("skipped \(s.name): \(s.reason)") }
            for w in batch.warnings where tally.warned.count <= 5 { log("decoded through a libjpeg warning (as PIL does): \(w.name): \(w.reason)") }
            left += batch.skipped.count
            for tap in taps {
                shards[tap]!.unreadable.skipped += batch.skipped
                shards[tap]!.unreadable.warned += batch.warnings
            }
            if batch.count > 0 {
                let x = try timed(&uploading) { () throws -> Tensor in
                    let x = try vit.ctx.images(batch, of: images)
                    if profileStart == nil { try vit.ctx.finish() }   // the upload on its own (not inside a profile)
                    return x
                }
                try timed(&forwarding) {
                    let out = try vit.forward(x, taps: Set(taps))
                    let pooledValues = try out[.norm].flatMap { try vit.pooled($0) }.map { try vit.ctx.read($0) }
                    for tap in taps {
                        let tokens = tap == .norm && vit.projectTokens ? try vit.projected(out[tap]!) : out[tap]!
                        shards[tap]!.append(try vit.ctx.read(tokens), labels: batch.labels, pooled: tap == .norm ? pooledValues : nil)
                    }
                }
            }
            if let start = profileStart, index + 1 == min(profileFirst + profileBatches, plan.count) {
                try vit.ctx.finish()
                vit.ctx.stream.profiling = false
                let n = index + 1 - profileFirst
                let report = ProfileReport(vit.ctx.stream.profile, steps: n, wallSeconds: Date().timeIntervalSince(start), device: vit.ctx.device.name)
                vit.ctx.stream.resetProfile()
                profileStart = nil
                log("profile of \(n) batch\(n == 1 ? "" : "es") of \(batchSize) images (per batch):\n" + report.table())
                try report.writeJSON(to: output.appendingPathComponent("profile.json").path)
            }
            done += step.indices.count
            try tally.check(read: min(done, tally.images))
            let rate = Double(done) / max(Date().timeIntervalSince(start), 1e-9)
            progress?("shard \(step.shard + 1)/\(shardCount): \(done)/\(total) images, \(String(format: "%.1f", rate)) images/s, ETA \(Int(Double(total - done) / max(rate, 1e-9)))s")
            if step.last {
                try timed(&writing) {
                    for tap in taps {
                        try shards[tap]!.write(to: shardPath(tap, step.shard).path) { KillPoint.reached(.extractTemp, head: tap.description, epoch: step.shard) }
                    }
                }
                KillPoint.reached(.extractShard, head: "*", epoch: step.shard)
                shards = emptyShards()
            }
        }
        let seconds = Date().timeIntervalSince(start)
        let report = tally.report
        unreadable = report
        var finished = manifest
        finished.unreadable = report
        try writeManifest(finished, to: manifestURL)
        if report.unreadable > 0 || report.decodedWithWarnings > 0 {
            log("\(tally.split): \(report.line)\(report.unreadable > 0 ? " (named above; left out of the token set)" : "")")
        }
        log("extracted \(total - left) images in \(String(format: "%.1f", seconds)) s (\(String(format: "%.1f", Double(total - left) / max(seconds, 1e-9))) images/s) into \(taps.map { output.appendingPathComponent($0.description).path }.joined(separator: ", "))")
        func s(_ x: Double) -> String { String(format: "%.1f s", x) }
        log("time: waiting for decoded images \(s(waited)), upload \(s(uploading)), forward and download \(s(forwarding)), writing shards \(s(writing)), other \(s(max(0, seconds - waited - uploading - forwarding - writing)))")
        lastTimes = ExtractionTimes(waiting: waited, upload: uploading, forward: forwarding, writing: writing, total: seconds)
        return Dictionary(uniqueKeysWithValues: taps.map { ($0, output.appendingPathComponent($0.description)) })
    }

    func writeManifest(_ m: ExtractionManifest, to url: URL) throws {
        try RunFileJSON.encoder().encode(m).write(to: url, options: .atomic)
    }
}

/// Wall-clock seconds of an extraction by phase: waiting for decoded batches (decoding beyond what
/// overlapped the device), the upload, the forward with the tokens' download, writing shards.
public struct ExtractionTimes: Sendable, Equatable {
    public var waiting, upload, forward, writing, total: Double
}
