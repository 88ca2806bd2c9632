import ArgumentParser
import Foundation
import ProbeData
import ProbeKernels
import ProbeShaders
import ProbeTraining
import VulkanCompute

struct KNNCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "knn",
        abstract: "Training-free k-NN evaluation of token features (upstream's --knn_eval): cosine similarity, weighted votes, k and T swept from one extraction.")

    @Option(help: "Training tokens (file or shard directory).") var trainTokens: String
    @Option(help: "Validation tokens.") var valTokens: String
    @Option(help: "Neighbour counts, comma-separated (at most 256).") var k = "5,10,15,20,50,100,200"
    @Option(name: .customLong("T"), help: "Temperatures, comma-separated.") var temperatures = "0.07"
    @Option(help: "cls ([CLS], upstream's default) or gap (mean of the patch tokens, upstream's `pos`).") var features = "cls"
    @Option(help: "Classes (default: from the labels).") var classes: Int?
    @Option(help: "Write the results as JSON to this file.") var output: String?
    @OptionGroup var flags: DeviceFlags

    func run() throws {
        try reportingErrors {
            let ks = try k.split(separator: ",").map { s -> Int in
                guard let v = Int(s.trimmingCharacters(in: .whitespaces)), v > 0 else { throw TrainingError("--k \(k): positive integers") }
                return v
            }
            let Ts = try temperatures.split(separator: ",").map { s -> Double in
                guard let v = Double(s.trimmingCharacters(in: .whitespaces)), v > 0 else { throw TrainingError("--T \(temperatures): positive numbers") }
                return v
            }
            let device = try ComputeDevice(options: flags.options, shaders: BundledShaders.shared)
            let ctx = try KernelContext(device: device)
            let train = try TokenDataset(path: trainTokens), val = try TokenDataset(path: valTokens)
            guard train.dim == val.dim else { throw TrainingError("token widths differ: \(train.dim) and \(val.dim)") }
            let C = classes ?? max(train.classCount, val.classCount)
            try train.validateLabels(classes: C); try val.validateLabels(classes: C)
            let start = Date()
            let bank = try KNNClassifier(ctx: ctx, features: try KNNClassifier.features(train, kind: features, ctx: ctx), labels: train.labels,
                                         dim: train.dim, classes: C)
            let results = try bank.evaluate(features: try KNNClassifier.features(val, kind: features, ctx: ctx), labels: val.labels, ks: ks, temperatures: Ts)
            print("k-NN on \(features) features: \(train.samples) training, \(val.samples) validation samples, \(C) classes, bank in \(bank.chunkCount) chunk\(bank.chunkCount == 1 ? "" : "s") on \(device.name) (\(String(format: "%.1f", Date().timeIntervalSince(start))) s)")
            for r in results { print(String(format: "  T %-6g k %4d: top-1 %6.2f%%  top-5 %6.2f%%", r.T, r.k, r.top1, r.top5)) }
            if let best = results.max(by: { $0.top1 < $1.top1 }) { print(String(format: "best: k %d, T %g, top-1 %.2f%%", best.k, best.T, best.top1)) }
            if let output {
                struct Out: Encodable { let features: String; let train: String; let val: String; let classes: Int; let results: [KNNResult] }
                let e = JSONEncoder()
                e.outputFormatting = [.prettyPrinted, .sortedKeys]
                try e.encode(Out(features: features, train: trainTokens, val: valTokens, classes: C, results: results)).write(to: URL(fileURLWithPath: output), options: .atomic)
            }
        }
    }
}
