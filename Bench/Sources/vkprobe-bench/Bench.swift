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
        subcommands: [KernelsBench.self, HeadsBench.self, BackboneBench.self, PipelineBench.self])
}

/// One measured record, as written to JSON. A rate that does not apply to the op (bytes moved by a
/// whole ViT forward, FLOPs of decoding) is absent rather than zero.
struct BenchRecord: Codable {
    var op: String
    var shape: [Int]
    var dtype: String
    var variant: String
    var median_ms: Double
    var gflops: Double?
    var gbps: Double?
    var device: String
    /// Pipeline stages and backbones: images per second.
    var images_per_s: Double? = nil
    /// Backbones: the device memory in use at the forward's peak.
    var peak_memory_bytes: Int? = nil
}

/// Times `body` with GPU timestamps: `warmup` untimed runs, then the median of `repeats`.
/// The environment's switches, read once here at the edge: the kernel knobs (`KernelTuning`) and
/// the device's memory switches.
let benchEnvironment = ProcessInfo.processInfo.environment
let benchTuning = KernelTuning(environment: benchEnvironment)

func measure(_ ctx: KernelContext, warmup: Int = 1, repeats: Int = 5, _ body: () throws -> Void) throws -> Double {
    for _ in 0..<warmup { try body(); try ctx.finish() }
    return median(try (0..<repeats).map { _ in try timed(ctx, body) })
}

/// Milliseconds of device time that `body`'s work takes (GPU timestamps around it, then a finish).
func timed(_ ctx: KernelContext, _ body: () throws -> Void) throws -> Double {
    try ctx.stream.beginRegion("bench")
    try body()
    try ctx.stream.endRegion("bench")
    try ctx.finish()
    return (ctx.stream.nanoseconds("bench") ?? .nan) / 1e6
}

/// The upper median (the middle element of an odd count).
func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }

func printTable(_ records: [BenchRecord]) {
    let rows = records.map { r in
        [r.op, r.shape.map(String.init).joined(separator: "×"), r.dtype, r.variant,
         String(format: "%.3f", r.median_ms), r.gflops.map { String(format: "%.2f", $0) } ?? "-", r.gbps.map { String(format: "%.2f", $0) } ?? "-"]
    }
    printColumns(["op", "shape", "dtype", "variant", "median ms", "GFLOP/s", "GB/s"], rows, leftAligned: 4)
}

/// A table: the first `leftAligned` columns padded on the right, the others (numbers) on the left.
func printColumns(_ header: [String], _ rows: [[String]], leftAligned: Int) {
    let widths = header.indices.map { i in ([header[i]] + rows.map { $0[i] }).map(\.count).max()! }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, c in i < leftAligned ? c.padding(toLength: widths[i], withPad: " ", startingAt: 0)
                                                       : String(repeating: " ", count: widths[i] - c.count) + c }.joined(separator: "  ")
    }
    print(line(header))
    print(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  "))
    rows.forEach { print(line($0)) }
}

/// Pretty-printed JSON with sorted keys, written atomically (records, peer records, profiles).
func writeJSON<T: Encodable>(_ value: T, to path: String) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try encoder.encode(value).write(to: URL(fileURLWithPath: path), options: .atomic)
}

/// Runs Bench/compare_torch.py on the records (PyTorch when importable, else NumPy), printing its
/// table after ours, with $VKPROBE_PYTHON (a venv with torch and timm) or python3. Looks for the
/// script next to the package root or the current directory.
func comparePeer(results: String, gpu: Bool, extra: [String] = []) {
    guard let script = peerScript() else { return }
    fflush(stdout)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    // The side-by-side records (ours with the peer's times) go next to ours: X.json → X.peer.json.
    let peerJSON = siblingPath(results, "peer")
    process.arguments = [ProcessInfo.processInfo.environment["VKPROBE_PYTHON"] ?? "python3", script, results, "--torch-device", gpu ? "cuda" : "cpu",
                         "--json", peerJSON] + extra
    do {
        try process.run()
        process.waitUntilExit()
    } catch {
        print("(could not run python3 \(script): \(error))")
    }
}

/// Bench/compare_torch.py next to the package root or the current directory (nil, with a note, if neither).
func peerScript() -> String? {
    let candidates = [URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../compare_torch.py").standardized.path,
                      "Bench/compare_torch.py"]
    guard let script = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
        print("(Bench/compare_torch.py not found: no side-by-side comparison)")
        return nil
    }
    return script
}

/// A file written beside the records at `path` (`F.json` → `F.peer.json`, `F.together.json`).
func siblingPath(_ path: String, _ kind: String) -> String {
    (path.hasSuffix(".json") ? String(path.dropLast(".json".count)) : path) + ".\(kind).json"
}

/// Removes the records written only to pass them to the peer script (and its `.peer.json`).
func removeScratchRecords(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
    try? FileManager.default.removeItem(atPath: siblingPath(path, "peer"))
}
