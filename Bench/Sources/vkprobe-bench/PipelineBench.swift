import ArgumentParser
import Foundation
import ProbeBackbones
import ProbeData
import ProbeKernels
import ProbeShaders
import ProbeTraining
import VulkanCompute

struct PipelineBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pipeline",
        abstract: "Images/s of decode + transform alone (CPU threads) and of the whole extract path, against torchvision's ImageFolder + DataLoader with the same workers in the same run.")

    @Option(help: "An ImageFolder (class sub-folders of JPEGs). Default: generated JPEGs of ImageNet's typical 500×375.") var data: String?
    @Option(help: "Generated images (without --data).") var images = 256
    @Option(help: "Decoding threads, ours and the DataLoader's workers.") var workers = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "Input size.") var size = 224
    @Option(help: "Batch size.") var batchSize = 32
    @Option(help: "Backbone of the extract path (timm name, random weights).") var model = "vit_small_patch16_224"
    @Option(help: "Block whose tokens the extract path takes (from 0; the ViT runs up to it).") var block = 11
    @Option(help: "Timed passes over the data (median).") var repeats = 3
    @Option(help: "Write the records as JSON to this file.") var json: String?
    @Option(help: "Device index or name substring.") var device: String?
    @Flag(help: "Skip the side-by-side torchvision run.") var noCompare = false

    func run() throws {
        let root: URL
        if let data { root = URL(fileURLWithPath: data) } else {
            root = FileManager.default.temporaryDirectory.appendingPathComponent("vkprobe-pipeline-\(images)")
            if !FileManager.default.fileExists(atPath: root.appendingPathComponent("done").path) {
                print("writing \(images) JPEGs of 500×375 to \(root.path)")
                for c in 0..<4 { try FileManager.default.createDirectory(at: root.appendingPathComponent("class\(c)"), withIntermediateDirectories: true) }
                DispatchQueue.concurrentPerform(iterations: images) { i in
                    var rng = AugmentRNG(seed: 1, epoch: 0, index: i)
                    var px = [UInt8](repeating: 0, count: 500 * 375 * 3)
                    for y in 0..<375 { for x in 0..<500 { for c in 0..<3 {
                        px[(y * 500 + x) * 3 + c] = UInt8(truncatingIfNeeded: (x * (c + 1) + y * (3 - c)) / 3 + Int(rng.next() % 24))
                    } } }
                    try? ImageEncoder.jpeg(RGBImage(width: 500, height: 375, pixels: px), quality: 90)
                        .write(to: root.appendingPathComponent("class\(i % 4)/\(i).jpg"))
                }
                try Data().write(to: root.appendingPathComponent("done"))
            }
        }
        let dataset = try ImageDatasets.imageFolder(root)
        let n = dataset.count
        let batches = stride(from: 0, to: n, by: batchSize).map { Array($0..<min($0 + batchSize, n)) }
        print("\(n) images from \(root.path), \(workers) workers, \(size) px, batch \(batchSize)")
        func wallMedian(_ body: () throws -> Void) rethrows -> Double {
            var t: [Double] = []
            for _ in 0..<repeats { let s = Date(); try body(); t.append(Date().timeIntervalSince(s)) }
            return median(t)
        }
        var rows: [(String, Double)] = []
        for (name, transform) in [("decode+eval", ImageTransform.eval(EvalTransform(size: size))),
                                  ("decode+train", ImageTransform.train(TrainTransform(size: size), seed: 0))] {
            let source = try DatasetImages(dataset: dataset, transform: transform, normalization: .imageNet, workers: workers)
            let s = try wallMedian { let st = source.load(batches, epoch: 0); while try st.next() != nil {} }
            rows.append((name, Double(n) / s))
        }
        // The whole extract path: loader → upload bytes → normalise on the device → ViT.
        let dev = try ComputeDevice(options: DeviceOptions(selector: device).applying(environment: benchEnvironment), shaders: BundledShaders.shared)
        let ctx = try KernelContext(device: dev, tuning: benchTuning)
        var config = try ViTRegistry.config(model)
        config.imgSize = size
        let vit = try VisionTransformer(weights: ViTWeights.random(config), ctx: ctx,
                                        precision: .standard(for: dev.capabilities))
        let source = try DatasetImages(dataset: dataset, transform: .eval(EvalTransform(size: size)), normalization: .imageNet, workers: workers)
        let tap = TokenTap.block(min(block, config.depth - 1))
        let extract = try wallMedian {
            let st = source.load(batches, epoch: 0)
            while let b = try st.next() { _ = try ctx.read(try vit.forward(try ctx.images(b, of: source), taps: [tap])[tap]!) }
        }
        rows.append(("extract \(model) \(tap)", Double(n) / extract))
        let x = try ctx.tensor([Float](repeating: 0.1, count: batchSize * 3 * size * size), [batchSize, 3, size, size])
        let vitMS = try measure(ctx, warmup: 1, repeats: repeats) { _ = try vit.forward(x, taps: [tap]) }
        rows.append(("ViT alone (GPU timestamps)", Double(batchSize) / (vitMS / 1e3)))
        print("device: \(dev.name)")
        for (name, rate) in rows { print("  " + name.padding(toLength: 40, withPad: " ", startingAt: 0) + String(format: "%9.1f images/s", rate)) }
        let ratio = rows[0].1 / rows[3].1
        print(String(format: "decode+eval is %.1f× the ViT's rate on this device: %@", ratio,
                     ratio >= 1 ? "decoding does not starve the device" : "DECODING IS THE BOTTLENECK (add --workers)"))
        let records = rows.map { BenchRecord(op: "pipeline:\($0.0)", shape: [n, size, size], dtype: "u8", variant: "\(workers) workers",
                                             median_ms: 1e3 * Double(n) / $0.1, gflops: nil, gbps: nil, device: dev.name,
                                             images_per_s: $0.1) }
        let path = json ?? FileManager.default.temporaryDirectory.appendingPathComponent("vkprobe-pipeline-\(getpid()).json").path
        try writeJSON(records, to: path)
        defer { if json == nil { removeScratchRecords(path) } }
        if json != nil { print("wrote \(path)") }
        if !noCompare {
            comparePeer(results: path, gpu: !dev.capabilities.isCPU,
                        extra: ["--pipeline", root.path, "--workers", "\(workers)", "--size", "\(size)", "--batch-size", "\(batchSize)",
                                "--model", model, "--block", "\(tap.description.dropFirst(5))", "--repeats", "\(repeats)"])
        }
    }
}
