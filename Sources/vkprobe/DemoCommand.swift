import ArgumentParser
import Foundation
import ProbeShaders
import ProbeTraining
import VulkanCompute

struct Smoke: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Smoke test: run a chain of dependent kernels on the device and check it against the CPU.")

    @Option(help: "Elements per tensor.") var elements = 1 << 20
    @Option(help: "Kernels in the dependent chain.") var chain = 8
    @OptionGroup var flags: DeviceFlags

    func run() throws {
        try reportingErrors {
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
            print(String(format: "chain of %d dependent kernels over %d floats: %.3f ms on the GPU (%.1f GB/s), %d barriers, max relative error %.2e",
                         chain, n, ms, gbps, stream.barrierCount, maxError))
            guard maxError <= 1e-6 else { throw VulkanError.invalidArgument("smoke dispatch gave wrong results (max relative error \(maxError))") }
            if let log = device.validationLog { print("validation messages: \(log.count)") }
            print("ok")
        }
    }
}

/// The main job on a built-in default: a synthetic token task where the class is carried by two
/// tokens among 64, trained with EP and a linear probe side by side (the upstream protocol: LARS).
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Train EP and a linear probe on a built-in synthetic token task and compare them.")

    @Option(help: "Where the task and the run go.") var output = "demo-output"
    @Option(help: "Epochs.") var epochs = 10
    @OptionGroup var flags: DeviceFlags

    func run() throws {
        try reportingErrors {
            let dir = URL(fileURLWithPath: output)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            print("Synthetic task: the class is carried by two tokens at random places among 64 (64-wide tokens, 10 classes,")
            print("4096 training / 1024 validation samples); every token of a sample shares a random offset.")
            for (file, n, seed) in [("train.safetensors", 4096, UInt64(0)), ("val.safetensors", 1024, UInt64(1))] {
                var spec = SyntheticTokens.Spec(samples: n)
                spec.seed = seed
                try SyntheticTokens.write(spec, to: dir.appendingPathComponent(file).path)
            }
            var train = try TrainCommand.parse([
                "--train-tokens", dir.appendingPathComponent("train.safetensors").path,
                "--val-tokens", dir.appendingPathComponent("val.safetensors").path,
                "--heads", "ep,lp_gap", "--ep-queries", "4", "--optimizer", "lars", "--lr", "1.0", "--warmup-epochs", "1",
                "--epochs", "\(epochs)", "--batch-size", "256", "--output", dir.appendingPathComponent("run").path])
            train.flags = flags
            try train.run()
            print("curves: \(dir.path)/run/ep/curves.svg, \(dir.path)/run/lp_gap/curves.svg")
        }
    }
}
