import Foundation
import VulkanCompute

/// Where a step's time goes, from GPU timestamps around every dispatch: per (op and shapes,
/// kernel) the calls, time, rate and share of the step, plus the time between dispatches (host
/// work, barriers, syncs: when the device ran nothing of ours).
public struct ProfileReport: Codable, Sendable {
    public struct Row: Codable, Sendable {
        public var op: String
        public var kernel: String
        /// How the kernel ran, where its op says (the CPU GEMM: its float4 paths, "ᵀ" its
        /// transposed form); empty otherwise.
        public var variant: String
        public var calls: Int
        public var ms: Double
        public var percent: Double
        public var gflops: Double?
        public var gbps: Double
    }
    public var rows: [Row]
    /// Per step: time inside dispatches, between them, and (when measured) on the host clock.
    public var dispatchMs: Double
    public var betweenMs: Double
    public var wallMs: Double?
    public var steps: Int
    public var device: String

    /// `timings` of `steps` steps (rows are per step); `wallSeconds` is their host-clock duration.
    public init(_ timings: [DispatchTiming], steps: Int = 1, wallSeconds: Double? = nil, device: String) {
        let n = Double(max(steps, 1))
        var groups: [String: (op: String, kernel: String, variant: String, calls: Int, ns: Double, flops: Double, bytes: Double)] = [:]
        var order: [String] = []
        for t in timings {
            let key = t.label + "\u{1}" + t.kernel + "\u{1}" + t.variant
            if groups[key] == nil { order.append(key); groups[key] = (t.label, t.kernel, t.variant, 0, 0, 0, 0) }
            groups[key]!.calls += 1; groups[key]!.ns += t.nanoseconds; groups[key]!.flops += t.flops; groups[key]!.bytes += Double(t.bytes)
        }
        var between = 0.0
        for (a, b) in zip(timings, timings.dropFirst()) { between += max(0, b.beginNs - (a.beginNs + a.nanoseconds)) }
        let inside = timings.reduce(0) { $0 + $1.nanoseconds }
        dispatchMs = inside / 1e6 / n
        betweenMs = between / 1e6 / n
        wallMs = wallSeconds.map { $0 * 1e3 / n }
        self.steps = steps
        self.device = device
        let total = max(wallMs ?? (dispatchMs + betweenMs), 1e-9)
        rows = order.map { key in
            let g = groups[key]!
            let ms = g.ns / 1e6 / n
            return Row(op: g.op, kernel: g.kernel, variant: g.variant, calls: Int((Double(g.calls) / n).rounded()), ms: ms, percent: 100 * ms / total,
                       gflops: g.flops > 0 ? g.flops / g.ns : nil, gbps: g.bytes / g.ns)
        }.sorted { $0.ms > $1.ms }
    }

    /// The table (largest first; `limit` rows, the rest summed).
    public func table(limit: Int = 40) -> String {
        var lines = ["per step on \(device) (\(steps) step\(steps == 1 ? "" : "s") profiled):"]
        let opWidth = min(max(rows.prefix(limit).map(\.op.count).max() ?? 2, 2), 70)
        func cell(_ s: String, _ w: Int) -> String { s.count >= w ? String(s.prefix(w)) : s.padding(toLength: w, withPad: " ", startingAt: 0) }
        lines.append(cell("op (shapes)", opWidth) + "  " + cell("kernel", 26) + " calls      ms      %  GFLOP/s    GB/s")
        for r in rows.prefix(limit) {
            lines.append(cell(r.op, opWidth) + "  " + cell(r.variant.isEmpty ? r.kernel : r.kernel + " " + r.variant, 26) + String(format: " %5d %7.2f %6.1f %8@ %7.2f", r.calls, r.ms, r.percent,
                                                                                     r.gflops.map { String(format: "%.2f", $0) } ?? "-", r.gbps))
        }
        if rows.count > limit {
            let rest = rows.dropFirst(limit)
            lines.append(cell("(\(rest.count) more)", opWidth) + "  " + cell("", 26)
                         + String(format: " %5d %7.2f %6.1f", rest.reduce(0) { $0 + $1.calls }, rest.reduce(0) { $0 + $1.ms }, rest.reduce(0) { $0 + $1.percent }))
        }
        lines.append(String(format: "in dispatches %.2f ms (%d per step); between dispatches %.2f ms (host work, barriers, syncs)",
                            dispatchMs, rows.reduce(0) { $0 + $1.calls }, betweenMs)
                     + (wallMs.map { String(format: "; host clock %.2f ms per step", $0) } ?? ""))
        return lines.joined(separator: "\n")
    }

    public func writeJSON(to path: String) throws {
        // snake_case keys, as every file vkprobe leaves in a run folder (ProbeData's RunFileJSON).
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        e.keyEncodingStrategy = .convertToSnakeCase
        try e.encode(self).write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}

extension KernelContext {
    /// Runs `body` `steps` times with every dispatch timed and returns the per-step profile.
    public func profile(steps: Int = 1, _ body: () throws -> Void) throws -> ProfileReport {
        try finish()
        stream.resetProfile()
        stream.profiling = true
        defer { stream.profiling = false }
        let start = Date()
        for _ in 0..<steps { try body() }
        try finish()
        let wall = Date().timeIntervalSince(start)
        let report = ProfileReport(stream.profile, steps: steps, wallSeconds: wall, device: device.name)
        stream.resetProfile()
        return report
    }
}
