import ArgumentParser
import Foundation
import ProbeData
import ProbeKernels
import ProbeShaders
import ProbeTraining
import SafeTensors
import VulkanCompute

struct KNNCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "knn",
        abstract: "Training-free k-NN evaluation of token features (upstream's --knn_eval): cosine similarity, weighted votes, k and T swept from one extraction.")

    @Option(help: "Training tokens (file or shard directory).") var trainTokens: String
    @Option(help: "Validation tokens.") var valTokens: String
    @Option(help: "Neighbour counts, comma-separated (at most 256).") var k = "5,10,15,20,50,100,200"
    @Option(name: .customLong("temperatures"), help: "Temperatures, comma-separated (DINO's k-NN temperature).") var temperatures = "0.07"
    @Option(help: "cls ([CLS], upstream's default) or gap (mean of the patch tokens, upstream's `pos`).") var features = "cls"
    @Option(help: "Classes (default: from the labels).") var classes: Int?
    @Option(help: "Write the results as JSON to this file.") var output: String?
    @Option(help: "The backbone's checkpoint (timm names): with it, upstream's `final_norm` variant (features through the encoder's final LayerNorm `norm.*`) is reported beside `raw`, as upstream's --knn_eval prints both.") var weights: String?
    @Option(help: "The final LayerNorm's eps (timm: 1e-6; CLIP 1e-5).") var normEps = 1e-6
    @OptionGroup var flags: DeviceFlags
    @OptionGroup var logging: LoggingOptions

    func run() throws {
        try reportingErrors {
            if let output { try Destination.file(output) }
            let ks = try k.split(separator: ",").map { s -> Int in
                guard let v = Int(s.trimmingCharacters(in: .whitespaces)), v > 0 else { throw TrainingError("--k \(k): positive integers") }
                return v
            }
            let Ts = try temperatures.split(separator: ",").map { s -> Double in
                guard let v = Double(s.trimmingCharacters(in: .whitespaces)), v > 0 else { throw TrainingError("--temperatures \(temperatures): positive numbers") }
                return v
            }
            let device = try ComputeDevice(options: flags.options, shaders: BundledShaders.shared)
            let ctx = try KernelContext.commandLine(device)
            let train = try TokenDataset(path: trainTokens), val = try TokenDataset(path: valTokens)
            if let big = ks.first(where: { $0 > min(256, train.samples) }) {
                let fits = ks.filter { $0 <= min(256, train.samples) }
                throw TrainingError("--k \(k): k = \(big) is more neighbours than the \(train.samples) training samples of \(trainTokens) hold (k ≤ \(min(256, train.samples))); "
                                    + (fits.isEmpty ? "pass smaller values with --k" : "pass --k \(fits.map(String.init).joined(separator: ","))"))
            }
            let width = features == "cls" ? train.clsDim : train.dim
            guard width == (features == "cls" ? val.clsDim : val.dim) else { throw TrainingError("feature widths differ between \(trainTokens) and \(valTokens)") }
            let C = classes ?? max(train.classCount, val.classCount)
            try train.validateLabels(classes: C); try val.validateLabels(classes: C)
            let trainFeatures = try KNNClassifier.features(train, kind: features, ctx: ctx), valFeatures = try KNNClassifier.features(val, kind: features, ctx: ctx)
            var variants = [("raw", trainFeatures, valFeatures)]
            if let weights {
                let file = try SafeTensorsFile(path: weights)
                guard file.entries["norm.weight"] != nil, file.entries["norm.bias"] != nil else {
                    throw TrainingError("--weights \(weights): no final LayerNorm (norm.weight, norm.bias); upstream reports raw features only then")
                }
                let w = try file.floats("norm.weight"), b = try file.floats("norm.bias")
                variants.append(("final_norm", try KNNClassifier.finalNorm(trainFeatures, dim: width, weight: w, bias: b, eps: normEps),
                                 try KNNClassifier.finalNorm(valFeatures, dim: width, weight: w, bias: b, eps: normEps)))
            }
            struct Variant: Encodable { let features: String; let results: [KNNResult] }
            var reports: [Variant] = []
            for (name, trainF, valF) in variants {
                let start = Date()
                let bank = try KNNClassifier(ctx: ctx, features: trainF, labels: train.labels, dim: width, classes: C)
                let results = try bank.evaluate(features: valF, labels: val.labels, ks: ks, temperatures: Ts)
                print("=== features=\(name) === k-NN on \(features) features: \(train.samples) training, \(val.samples) validation samples, \(C) classes, bank in \(bank.chunkCount) chunk\(bank.chunkCount == 1 ? "" : "s") on \(device.name) (\(String(format: "%.1f", Date().timeIntervalSince(start))) s)")
                for r in results { print(String(format: "  T %-6g k %4d: top-1 %6.2f%%  top-5 %6.2f%%", r.T, r.k, r.top1, r.top5)) }
                if let best = results.max(by: { $0.top1 < $1.top1 }) { print(String(format: "best (%@): k %d, T %g, top-1 %.2f%%", name, best.k, best.T, best.top1)) }
                reports.append(Variant(features: name, results: results))
            }
            if let output {
                struct Out: Encodable { let features: String; let train: String; let val: String; let classes: Int; let results: [KNNResult]; let variants: [Variant] }
                let e = JSONEncoder()
                e.outputFormatting = [.prettyPrinted, .sortedKeys]
                try e.encode(Out(features: features, train: trainTokens, val: valTokens, classes: C, results: reports[0].results, variants: reports))
                    .write(to: URL(fileURLWithPath: output), options: .atomic)
            }
        }
    }
}
