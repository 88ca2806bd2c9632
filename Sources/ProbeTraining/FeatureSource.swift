import Foundation
import Logging
import ProbeBackbones
import ProbeData
import ProbeKernels

/// Where the trainer's token features come from: token files (extracted once) or images run
/// through the frozen backbone at every step. Either way a batch is produced once and fed to
/// every head.
public protocol FeatureSource: AnyObject {
    /// What it is (for logs and errors).
    var description: String { get }
    var samples: Int { get }
    /// Patch tokens per sample and their width.
    var patches: Int { get }
    var dim: Int { get }
    var hasCLS: Bool { get }
    /// The tokens begin with the [CLS] token (`TokenSetInfo.clsInTokens`), counted in `patches`.
    var clsInTokens: Bool { get }
    /// The width of the `cls` features (D, or CLIP's projection width).
    var clsDim: Int { get }
    var labels: [Int32] { get }
    /// Augmented views per image held (view-major; see `TokenSetInfo.views`).
    var views: Int { get }
    /// The batches listed (sample indices), in order, on the device; `epoch` seeds augmentation.
    func batches(_ batches: [[Int]], epoch: Int) -> FeatureStream
}

extension FeatureSource {
    public var classCount: Int { Int(labels.max() ?? 0) + 1 }

    /// Checks labels lie in [0, classes).
    public func validateLabels(classes: Int) throws {
        if let bad = labels.enumerated().first(where: { $0.element < 0 || Int($0.element) >= classes }) {
            throw DataError("\(description): label \(bad.element) of sample \(bad.offset) is outside [0, \(classes)); pass --classes or fix the labels")
        }
    }
}

/// Device batches in order.
public final class FeatureStream {
    let nextBatch: () throws -> DeviceBatch?
    public init(_ next: @escaping () throws -> DeviceBatch?) { nextBatch = next }
    public func next() throws -> DeviceBatch? { try nextBatch() }
}

/// Token files: each batch is gathered from the memory-mapped shards and uploaded.
public final class TokenFeatures: FeatureSource {
    public let dataset: TokenDataset
    let ctx: KernelContext
    public init(_ dataset: TokenDataset, ctx: KernelContext) { self.dataset = dataset; self.ctx = ctx }
    public var description: String { dataset.path }
    public var samples: Int { dataset.samples }
    public var patches: Int { dataset.tokens }
    public var dim: Int { dataset.dim }
    public var hasCLS: Bool { dataset.hasCLS }
    public var clsInTokens: Bool { dataset.info?.clsInTokens == true }
    public var clsDim: Int { dataset.clsDim }
    public var labels: [Int32] { dataset.labels }
    public var views: Int { dataset.views }

    public func batches(_ batches: [[Int]], epoch: Int) -> FeatureStream {
        var k = 0
        return FeatureStream { [self] in
            guard k < batches.count else { return nil }
            let indices = batches[k]
            k += 1
            let ds = dataset
            let tokens = try ctx.tensor(try ds.gatherTokens(indices), [indices.count, ds.tokens, ds.dim])
            let cls = ds.hasCLS ? try ctx.tensor(try ds.gatherCLS(indices), [indices.count, ds.clsDim]) : nil
            let labels = try ctx.tensor(indices.map { ds.labels[$0] }, [indices.count])
            return DeviceBatch(tokens: tokens, cls: cls, labels: labels, size: indices.count)
        }
    }
}

/// Images through the frozen backbone at every batch (upstream's protocol: augmentation each
/// epoch). Images that cannot be read are left out of their batch and reported once each.
public final class BackboneFeatures: FeatureSource {
    public let images: ImageSource
    public let vit: VisionTransformer
    public let tap: TokenTap
    let layout: TokenLayout
    let labelValues: [Int32]
    /// Progress lines and notes go through swift-log (info); the command line decides where.
    public var logger = Logger(label: "vkprobe.training")
    public func log(_ line: String) { logger.info("\(line)") }
    /// Every image skipped so far (each reported once).
    public private(set) var skipped: [Int: SkippedImage] = [:]
    /// Counts the split's unreadable images and stops the run past `--max-unreadable`.
    public var tally: UnreadableTally?
    private var read = 0
    /// Fine-tuning: batches carry the trained part's input (`DeviceBatch.backboneInput`) — the
    /// output of the last frozen block, or the patch rows when everything trains — instead of tokens.
    public var fineTune: FineTuneScope?
    /// Upstream's train-mode backbone (`--backbone-mode train`, the training split only): each
    /// batch's forward draws its drop path / RoPE rescale from the run's seed, the epoch and the
    /// batch's place in it.
    public var trainMode: (noise: TrainModeNoise, seed: UInt64)?

    public init(images: ImageSource, vit: VisionTransformer, tap: TokenTap) throws {
        self.images = images; self.vit = vit; self.tap = tap
        layout = vit.layout(height: images.height, width: images.width)
        guard layout.patches > 0 else { throw DataError("\(images.description): images of \(images.height)×\(images.width) px hold no \(vit.config.patchSize)-px patch") }
        labelValues = images.labels
        if vit.projectTokens && tap != .norm { throw DataError("--tokens projected: only the final norm's tokens (`norm`) go through CLIP's projection, not \(tap)") }
    }

    public var description: String { "\(images.description) through the ViT (width \(vit.config.embedDim), \(vit.config.depth) blocks) at \(tap)" }
    public var samples: Int { images.count }
    public var patches: Int { layout.patches + (clsInTokens ? 1 : 0) }
    public var clsInTokens: Bool { tap == .norm && vit.config.normTokensKeepCLS }
    public var dim: Int { projects ? vit.pooledWidth : vit.config.embedDim }
    /// The tokens go through CLIP's projection (`--tokens projected`; the final norm's only).
    var projects: Bool { tap == .norm && vit.projectTokens }
    /// After the final norm, `cls` is the pooled head's output where the backbone has one.
    public var usesPooled: Bool { tap == .norm && vit.pooledHead != nil }
    public var hasCLS: Bool { layout.cls || usesPooled }
    public var clsDim: Int { usesPooled ? vit.pooledWidth : vit.config.embedDim }
    public var labels: [Int32] { labelValues }
    public var views: Int { 1 }

    public func batches(_ batches: [[Int]], epoch: Int) -> FeatureStream {
        let stream = images.load(batches, epoch: epoch)
        let ctx = vit.ctx
        var index = 0
        return FeatureStream { [self] in
            while let batch = try stream.next() {
                for s in batch.skipped where skipped[s.index] == nil {
                    skipped[s.index] = s
                    log("skipped \(s.name): \(s.reason)")
                }
                if let tally {
                    for w in batch.warnings where !tally.warned.contains(w.name) && tally.warned.count < 5 {
                        log("decoded through a libjpeg warning (as PIL does): \(w.name): \(w.reason)")
                    }
                    tally.add(skipped: batch.skipped, warnings: batch.warnings)
                    read += batch.count + batch.skipped.count
                    try tally.check(read: min(read, tally.images))
                }
                guard batch.count > 0 else { continue }
                let x = try ctx.images(batch, of: images)
                let n = batch.count
                if let scope = fineTune {
                    let first = scope.firstBlock(depth: vit.config.depth)
                    let input = try vit.fineTuneInput(x, firstBlock: first, embeddings: scope.trainsEmbeddings)
                    var b = DeviceBatch(tokens: input, cls: nil, labels: try ctx.tensor(batch.labels, [n]), size: n)
                    b.backboneInput = input
                    b.grid = [layout.gridH, layout.gridW]
                    return b
                }
                let draw = trainMode.map { $0.noise.draw(seed: $0.seed, epoch: epoch, index: index, batch: n) }
                index += 1
                let out = try vit.forward(x, taps: [tap], noise: draw)[tap]!
                let all = projects ? try vit.projected(out) : out
                let tokens = try ctx.contiguous(try all.slice(axis: 1, (clsInTokens ? 0 : layout.prefix)..<layout.total))
                let cls = usesPooled ? try vit.pooled(out) : layout.cls ? try ctx.contiguous(try out.slice(axis: 1, 0..<1).squeezed(1)) : nil
                return DeviceBatch(tokens: tokens, cls: cls, labels: try ctx.tensor(batch.labels, [n]), size: n)
            }
            return nil
        }
    }
}

/// What a run on images probed (`OUTPUT/backbone.json`): `vkprobe maps` reads it to run the same
/// backbone at the same block and size over new images.
public struct RunBackbone: Codable, Sendable {
    public var model: String
    public var weights: String
    public var tap: String
    public var imageSize: Int
    public var mean: [Float]
    public var std: [Float]
    public var classes: [String]
    /// The probing protocol of the run (input size, tap, transforms…); nil in runs of older versions (MAE's transforms).
    public var probing: ProbingProtocol?
    public init(model: String, weights: String, tap: String, imageSize: Int, mean: [Float], std: [Float], classes: [String]) {
        self.model = model; self.weights = weights; self.tap = tap; self.imageSize = imageSize; self.mean = mean; self.std = std; self.classes = classes
    }
    public static let file = "backbone.json"

    public func write(to run: URL) throws {
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        try RunFileJSON.encoder().encode(self).write(to: run.appendingPathComponent(Self.file), options: .atomic)
    }

    public static func read(from run: URL) throws -> RunBackbone? {
        let url = run.appendingPathComponent(file)
        guard let data = try? Data(contentsOf: url) else { return nil }
        do { return try RunFileJSON.decoder().decode(RunBackbone.self, from: data) } catch { throw TrainingError("\(url.path): unreadable, \(RunFileJSON.describe(error))") }
    }
}
