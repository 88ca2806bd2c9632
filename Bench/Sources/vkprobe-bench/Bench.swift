import ArgumentParser
import Foundation
import ProbeKernels
import ProbeShaders
import VulkanCompute

@main
struct VKProbeBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vkprobe-bench",
        abstract: "Throughput of VulkanProbe's kernels, timed with GPU timestamps (median after warm-up).",
        subcommands: [KernelsBench.self])
}

/// One measured record, as written to JSON.
struct BenchRecord: Codable {
    var op: String
    var shape: [Int]
    var dtype: String
    var variant: String
    var median_ms: Double
    var gflops: Double
    var gbps: Double
    var device: String
}

/// Times `body` with GPU timestamps: `warmup` untimed runs, then the median of `repeats`.
func measure(_ ctx: KernelContext, warmup: Int = 1, repeats: Int = 5, _ body: () throws -> Void) throws -> Double {
    for _ in 0..<warmup { try body(); try ctx.finish() }
    var times: [Double] = []
    for _ in 0..<repeats {
        try ctx.stream.beginRegion("bench")
        try body()
        try ctx.stream.endRegion("bench")
        try ctx.finish()
        times.append((ctx.stream.nanoseconds("bench") ?? .nan) / 1e6)
    }
    times.sort()
    return times[times.count / 2]
}

func printTable(_ records: [BenchRecord]) {
    let header = ["op", "shape", "dtype", "variant", "median ms", "GFLOP/s", "GB/s"]
    let rows = records.map { r in
        [r.op, r.shape.map(String.init).joined(separator: "×"), r.dtype, r.variant,
         String(format: "%.3f", r.median_ms), String(format: "%.2f", r.gflops), String(format: "%.2f", r.gbps)]
    }
    let widths = header.indices.map { i in ([header[i]] + rows.map { $0[i] }).map(\.count).max()! }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, c in i < 4 ? c.padding(toLength: widths[i], withPad: " ", startingAt: 0)
                                             : String(repeating: " ", count: widths[i] - c.count) + c }.joined(separator: "  ")
    }
    print(line(header))
    print(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  "))
    rows.forEach { print(line($0)) }
}

func writeJSON(_ records: [BenchRecord], to path: String) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try encoder.encode(records).write(to: URL(fileURLWithPath: path), options: .atomic)
}
