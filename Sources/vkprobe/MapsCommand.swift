import ArgumentParser
import Foundation
import ProbeBackbones
import ProbeData
import ProbeKernels
import ProbeShaders
import ProbeTraining
import SafeTensors
import VulkanCompute

struct MapsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "maps",
        abstract: "Draw a trained EP head's attention maps over images: per-image PNGs, a contact sheet, the raw maps as safetensors.",
        discussion: """
        The run's backbone, block and input size come from RUN/backbone.json (written by `vkprobe train`
        on images); images go through the eval transform. Queries are grouped by cosine k-means; each
        patch takes the colour of the group attending to it most, its strength from that group's map,
        over the dimmed greyscale image.
        """)

    @Option(name: .customLong("run"), help: "A training run directory (with backbone.json and <head>/checkpoint-best.safetensors).") var runDirectory: String
    @Option(parsing: .upToNextOption, help: "Image files or directories (searched recursively, in name order).") var images: [String]
    @Option(help: "Output directory (default: the run's maps/, where `vkprobe report` looks; elsewhere, the run's maps.json points report to it).") var output: String?
    @Option(help: "The EP head's directory name in the run.") var head = "ep"
    @Option(help: "An EP head checkpoint to draw instead of the run's own (upstream's state_dict names: a head trained by upstream's code and saved with save_file(head.state_dict()), or any of ours).") var headCheckpoint: String?
    @Option(help: "Query groups (colours).") var groups = 4
    @Option(help: "At most this many images (the first in name order).") var maxImages = 16
    @Option(help: "Images per contact-sheet row.") var perRow = 4
    @Option(help: "Side of the drawn images in pixels (default: the input size, at least 224).") var displaySize: Int?
    @Option(help: "Also write the contact sheet as a TensorBoard image summary (`maps/<head>`) into this directory (a training run's --log-dir).") var logDir: String?
    @OptionGroup var flags: DeviceFlags
    @OptionGroup var logging: LoggingOptions

    func run() throws {
        try reportingErrors {
            let output = self.output ?? URL(fileURLWithPath: runDirectory).appendingPathComponent("maps").path
            try Destination.folder(output)
            guard groups >= 1 else { throw DataError("--groups \(groups): at least 1 query group (colour)") }
            let runURL = URL(fileURLWithPath: runDirectory)
            guard let bb = try RunBackbone.read(from: runURL) else {
                throw TrainingError("\(runDirectory)/\(RunBackbone.file) is missing: maps need a run trained on images (vkprobe train --model --weights --data)")
            }
            let files = try imageFiles()
            let device = try ComputeDevice(options: flags.options, shaders: BundledShaders.shared)
            let ctx = try KernelContext.commandLine(device)
            let config = try ViTRegistry.resolve(bb.model)
            let vit = try VisionTransformer(weights: try ViTWeights(config: config, file: try SafeTensorsFile(path: bb.weights), model: bb.model),
                                            ctx: ctx, precision: .standard(for: device.capabilities))
            let tap = try TokenTap.parse(bb.tap.replacingOccurrences(of: "block", with: ""), depth: config.depth)
            let ep = try EPMapsModel(checkpoint: headCheckpoint ?? runURL.appendingPathComponent(head).appendingPathComponent("checkpoint-best.safetensors").path, ctx: ctx)
            let layout = vit.layout(height: bb.imageSize, width: bb.imageSize)
            guard layout.patches > 0, ep.dim == config.embedDim else { throw TrainingError("the \(head) head (D = \(ep.dim)) does not fit \(bb.model) (D = \(config.embedDim))") }
            let transform = (bb.probing?.transforms ?? .mae).transforms(size: bb.imageSize).eval
            let decoder = ImageDecoder()
            var crops: [RGBImage] = [], names: [String] = []
            for f in files {
                do { crops.append(transform(try decoder.decode(contentsOf: f))); names.append(f.path) } catch {
                    say("skipped \(f.path): \(error)")
                }
            }
            guard !crops.isEmpty else { throw DataError("none of the \(files.count) images could be read") }
            // Tokens in batches of 16, then the head's maps.
            let (Q, N, S) = (ep.queries, layout.patches, bb.imageSize)
            var maps: [Float] = [], predicted: [Int] = []
            let source = MapsImages(size: S, normalization: Normalization(mean: bb.mean, std: bb.std))
            for start in stride(from: 0, to: crops.count, by: 16) {
                let chunk = crops[start..<min(start + 16, crops.count)]
                let batch = ImageBatch(indices: Array(0..<chunk.count), labels: chunk.map { _ in 0 }, pixels: .rgb8(chunk.flatMap(\.pixels)))
                let out = try vit.forward(try ctx.images(batch, of: source), taps: [tap])[tap]!
                // The head's input as it trained on it: after the final norm, open_clip's timm-trunk towers
                // keep the [CLS] in front (its column is left out of the maps, which cover the patches).
                let keepCLS = tap == .norm && config.normTokensKeepCLS
                let r = try ep.attention(try ctx.contiguous(try out.slice(axis: 1, (keepCLS ? 0 : layout.prefix)..<layout.total)))
                if keepCLS {
                    for row in stride(from: 0, to: r.maps.count, by: N + 1) { maps += r.maps[(row + 1)..<(row + N + 1)] }
                } else {
                    maps += r.maps
                }
                predicted += r.predicted
            }
            let assignment = cosineKMeans(try ep.queryVectors(), count: Q, dim: ep.dim, groups: groups)
            let outDir = URL(fileURLWithPath: output)
            try FileManager.default.createDirectory(at: outDir, withIntermediateDirectories: true)
            let side = displaySize ?? max(S, 224)
            var tiles: [RGBImage] = []
            for (i, crop) in crops.enumerated() {
                let shown = side == S ? crop : PILResize.resize(crop, width: side, height: side)
                let figure = AttentionFigure.overlay(shown, maps: maps[(i * Q * N)..<((i + 1) * Q * N)], queries: Q, gridH: layout.gridH, gridW: layout.gridW,
                                                     groups: assignment)
                let stem = String(format: "%03d-", i) + URL(fileURLWithPath: names[i]).deletingPathExtension().lastPathComponent
                try ImageEncoder.png(figure).write(to: outDir.appendingPathComponent("\(stem)-maps.png"), options: .atomic)
                tiles += [shown, figure]
                let cls = predicted[i] < bb.classes.count ? bb.classes[predicted[i]] : "\(predicted[i])"
                print("\(names[i]): predicted \(cls) → \(stem)-maps.png")
            }
            let rows = stride(from: 0, to: tiles.count, by: 2 * perRow).map { Array(tiles[$0..<min($0 + 2 * perRow, tiles.count)]) }
            let sheet = AttentionFigure.contactSheet(rows)
            let sheetPNG = try ImageEncoder.png(sheet)
            try sheetPNG.write(to: outDir.appendingPathComponent("contact-sheet.png"), options: .atomic)
            try RunMaps.record(outDir.appendingPathComponent("contact-sheet.png"), in: runURL)
            if let logDir {
                let tb = try TensorBoardWriter(directory: URL(fileURLWithPath: logDir))
                try tb.image("maps/\(head)", encoded: sheetPNG, width: sheet.width, height: sheet.height, step: 0)
                try tb.flush()
                say("TensorBoard image maps/\(head): \(tb.path.path)")
            }
            var w = SafeTensorsWriter()
            w.add("attention", maps, shape: [crops.count, Q, layout.gridH, layout.gridW])
            w.add("groups", int64: assignment.map(Int64.init), shape: [Q])
            w.add("queries", try ep.queryVectors(), shape: [Q, ep.dim])
            w.add("predicted", int64: predicted.map(Int64.init), shape: [crops.count])
            let namesJSON = String(decoding: try JSONEncoder().encode(names), as: UTF8.self)
            w.metadata = ["images": namesJSON, "model": bb.model, "tap": bb.tap, "image_size": "\(S)", "head": head]
            try w.write(to: outDir.appendingPathComponent("maps.safetensors").path)
            print(String(format: "focus: the median query's largest weight is %.2f× uniform (1 = attends evenly to all %d patches)",
                         AttentionFigure.focus(maps, queries: Q, patches: N), N))
            print("wrote \(crops.count) map images, \(outDir.path)/contact-sheet.png and \(outDir.path)/maps.safetensors (attention (\(crops.count), \(Q), \(layout.gridH), \(layout.gridW)); \(groups) query groups)")
        }
    }

    func imageFiles() throws -> [URL] {
        var out: [URL] = []
        for p in images {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: p, isDirectory: &isDir) else { throw DataError("\(p): no such file or directory (--images)") }
            if isDir.boolValue {
                let found = (FileManager.default.enumerator(at: URL(fileURLWithPath: p), includingPropertiesForKeys: nil)?.compactMap { $0 as? URL } ?? [])
                    .filter { ImageDatasets.imageExtensions.contains($0.pathExtension.lowercased()) }.sorted { $0.path < $1.path }
                out += found
            } else {
                out.append(URL(fileURLWithPath: p))
            }
        }
        guard !out.isEmpty else { throw DataError("no images found in \(images.joined(separator: ", "))") }
        guard maxImages > 0 else { throw DataError("--max-images \(maxImages): at least 1") }
        if out.count > maxImages { say("note: drawing the first \(maxImages) of \(out.count) images in name order (--max-images \(out.count) for all)") }
        return Array(out.prefix(maxImages))
    }
}

/// The geometry and normalisation of the images `maps` uploads itself.
final class MapsImages: ImageSource {
    let height: Int, width: Int, normalization: Normalization
    init(size: Int, normalization: Normalization) { height = size; width = size; self.normalization = normalization }
    var count: Int { 0 }
    var description: String { "images for maps" }
    func label(_ i: Int) -> Int32 { 0 }
    func load(_ batches: [[Int]], epoch: Int) -> ImageBatchStream { ImageBatchStream(next: { nil }) }
}
