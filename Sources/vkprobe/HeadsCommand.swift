import ArgumentParser
import Foundation
import ProbeHeads
import ProbeKernels
import ProbeShaders
import ProbeTraining
import VulkanCompute

struct HeadsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "heads",
        abstract: "Every head: trainable parameters, multiply-adds per image, measured training throughput.")

    @Option(help: "Token width D.") var dim = 768
    @Option(help: "Patch tokens N given to the pooling.") var tokens = 196
    @Option(help: "Classes of the classifier.") var classes = 1000
    // The names `train` uses for the same ideas; the old ones kept as aliases.
    @Option(name: .customLong("ep-queries"), help: "EP queries Q (as train's --ep-queries).") var queries = 32
    @Option(name: .customLong("num-heads"), help: "Heads of aim and jepa (upstream --num_heads).") var numHeads = 16
    @Option(name: .customLong("batch-size"), help: "Batch for the throughput measurement (default 32 on GPUs, 2 on CPU devices).") var batch: Int?
    @Flag(help: "Skip the throughput measurement.") var noMeasure = false
    @Flag(help: "Print JSON records instead of the table.") var json = false
    @Option(name: .customLong("heads"), help: "Only these heads (comma-separated, as train's --heads).") var only: String?
    @OptionGroup var flags: DeviceFlags
    @OptionGroup var logging: LoggingOptions

    func run() throws {
        try reportingErrors {
            for (flag, value) in [("--dim", dim), ("--tokens", tokens), ("--classes", classes), ("--ep-queries", queries), ("--num-heads", numHeads), ("--batch-size", batch ?? 1)] where value < 1 {
                throw TrainingError("\(flag) \(value): at least 1")
            }
            let names = only.map { $0.split(separator: ",").map(String.init) } ?? Heads.names
            var ctx: KernelContext?
            if !noMeasure { ctx = try KernelContext.commandLine(try ComputeDevice(options: flags.options, shaders: BundledShaders.shared)) }
            let b = batch ?? ((ctx?.device.capabilities.isCPU ?? false) ? 2 : 32)
            var reports: [HeadReport] = []
            var skipped: [String] = []
            for name in names {
                let pooling: Pooling
                do {
                    let n = try HeadName(name).tokens(patches: tokens)
                    pooling = try Heads.pooling(name, HeadOptions(dim: dim, tokens: n, queries: queries, heads: numHeads, classes: classes))
                } catch {
                    skipped.append("\(name): \(error)"); continue
                }
                let layout = ProbeHeadLayout(pooling: pooling, classes: classes)
                var r = layout.report(name: name)
                if let ctx {
                    r.images_per_s = try measureTrainingStep(layout, ctx: ctx, batch: b)
                    r.batch = b
                    r.device = ctx.device.name
                    if !json { FileHandle.standardError.write(Data("  measured \(name)\n".utf8)) }
                }
                reports.append(r)
            }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(reports), as: UTF8.self))
            } else {
                printHeadsTable(reports, dim: dim, tokens: tokens, classes: classes, device: ctx?.device.name, batch: b)
            }
            for s in skipped { FileHandle.standardError.write(Data("skipped \(s)\n".utf8)) }
            // Heads asked for by name that could not be built: the table is incomplete, say so by the status too.
            if only != nil && !skipped.isEmpty { throw ExitCode(1) }
        }
    }
}

func grouped(_ n: Int) -> String {
    let s = String(n)
    var out = ""
    for (i, ch) in s.reversed().enumerated() { if i > 0 && i % 3 == 0 { out.append(",") }; out.append(ch) }
    return String(out.reversed())
}

func printHeadsTable(_ reports: [HeadReport], dim: Int, tokens: Int, classes: Int, device: String?, batch: Int) {
    print("heads at D = \(dim), N = \(tokens), C = \(classes)" + (device.map { "; training throughput on \($0), batch \(batch)" } ?? ""))
    let header = ["head", "pooling params", "params + classifier", "MACs/img fwd", "MACs/img fwd+bwd", "images/s (fwd+bwd)"]
    let rows = reports.map { r in
        [r.head, grouped(r.pooling_params), grouped(r.total_params), grouped(r.macs_forward), grouped(r.macs_forward_backward),
         r.images_per_s.map { String(format: "%.1f", $0) } ?? "-"]
    }
    let widths = header.indices.map { i in ([header[i]] + rows.map { $0[i] }).map(\.count).max()! }
    func line(_ c: [String]) -> String {
        c.enumerated().map { i, s in i == 0 ? s.padding(toLength: widths[i], withPad: " ", startingAt: 0)
                                            : String(repeating: " ", count: widths[i] - s.count) + s }.joined(separator: "  ")
    }
    print(line(header))
    print(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  "))
    rows.forEach { print(line($0)) }
}
