import ArgumentParser
import Foundation
import ProbeHeads
import ProbeKernels
import ProbeShaders
import ProbeTraining
import VulkanCompute

struct HeadsBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "heads",
        abstract: "Training throughput of every head (pooling → BN → Linear, cross-entropy, backward) at ViT-B shapes.")

    @Flag(help: "Smaller shapes for lavapipe (D 768, N 49, batch 4).") var quick = false
    @Option(help: "Write the records as JSON to this file.") var json: String?
    @Option(help: "Device index or name substring.") var device: String?
    @Option(help: "Only these heads (comma-separated).") var only: String?
    @Option(help: "Timed repeats per head.") var repeats = 3
    @Option(help: "Directory of an upstream efficient-probing checkout for the PyTorch side (else $EP_UPSTREAM).") var upstream: String?
    @Flag(help: "Skip the side-by-side PyTorch run.") var noCompare = false
    @Flag(help: "Also print each head's per-op profile of one step (GPU timestamps around every dispatch).") var profile = false
    @Option(help: "With --profile: write the profiles as JSON to this file.") var profileJSON: String?
    @Option(help: "Shape override B,N,D,C.") var shape: String?
    @Flag(help: "Also time every listed head's step from one shared batch, recorded together, against the sum of their single-head times.") var together = false
    @Option(help: "Rounds over the listed heads. With the PyTorch peer, each head's step is timed and then the peer's, in every round; the ratio reported is the median of the per-round ratios.") var rounds = 1
    @Option(help: "The heads' GEMM operands: fp32, fp16 or bf16 (as vkprobe train --head-precision; the PyTorch peer is timed for fp32 records only).") var headPrecision = "fp32"

    func run() throws {
        guard let precision = HeadPrecision(rawValue: headPrecision) else { throw ValidationError("--head-precision fp32, fp16 or bf16") }
        let dev = try ComputeDevice(options: DeviceOptions(selector: device).applying(environment: benchEnvironment), shaders: BundledShaders.shared)
        // VKPROBE_COMMANDS_PER_SUBMIT: how many dispatches a submission holds (on a CPU device,
        // recording the next chunk competes with the execution of the last for the same cores).
        let perSubmit = ProcessInfo.processInfo.environment["VKPROBE_COMMANDS_PER_SUBMIT"].flatMap { Int($0) } ?? 256
        let ctx = try KernelContext(device: dev, maxCommandsPerSubmit: perSubmit, tuning: benchTuning)
        var (D, N, B, C) = quick ? (768, 49, 4, 1000) : (768, 196, 256, 1000)
        if let shape {
            let v = shape.split(separator: ",").compactMap { Int($0) }
            guard v.count == 4 else { throw ValidationError("--shape B,N,D,C") }
            (B, N, D, C) = (v[0], v[1], v[2], v[3])
        }
        var profiles: [String: ProfileReport] = [:]
        print("device: \(dev.name); heads at D = \(D), N = \(N), batch \(B), C = \(C)")
        let names = only.map { $0.split(separator: ",").map(String.init) } ?? Heads.names
        var layouts: [(name: String, layout: ProbeHeadLayout)] = []
        for name in names {
            do { layouts.append((name, ProbeHeadLayout(pooling: try Heads.pooling(name, HeadOptions(dim: D, tokens: try HeadName(name).tokens(patches: N),
                                                                                                   queries: 32, heads: 16, classes: C)), classes: C))) } catch {
                print("  \(name): \(error)")
            }
        }
        // The peer (upstream's fp32 heads in PyTorch) times each head right after ours, round by round.
        let upstreamArgs = upstream.map { ["--upstream", $0] } ?? []
        let peer = noCompare || precision != .fp32 ? nil : PeerServer(gpu: !dev.capabilities.isCPU, extra: upstreamArgs)
        var ours: [String: [Double]] = [:], theirs: [String: [Double]] = [:], peerErrors: [String: String] = [:]
        for round in 0..<max(1, rounds) {
            for (name, layout) in layouts {
                let imagesPerSecond = try measureTrainingStep(layout, ctx: ctx, batch: B, repeats: repeats, precision: precision)
                ours[name, default: []].append(Double(B) / imagesPerSecond * 1e3)
                FileHandle.standardError.write(Data(String(format: "  %@: %.1f images/s\n", name, imagesPerSecond).utf8))
                if let peer, peerErrors[name] == nil {
                    switch peer.time(op: "head:\(name)", shape: [B, N, D, C], repeats: 5) {
                    case .success(let ms): theirs[name, default: []].append(ms)
                    case .failure(let e): peerErrors[name] = e.description
                    }
                }
                if profile && round == 0 {
                    let step = try trainingStep(layout, ctx: ctx, batch: B, precision: precision)
                    try step(); try ctx.finish()   // warm-up
                    let report = try ctx.profile { try step() }
                    profiles[name] = report
                    print("\n\(name): one training step (forward, loss, backward) at B \(B), N \(N), D \(D), C \(C)\n" + report.table(limit: 25) + "\n")
                }
            }
        }
        let records: [BenchRecord] = layouts.map { name, layout in
            let ms = median(ours[name]!)
            let flops = 2.0 * 3.0 * Double(layout.forwardMACs) * Double(B)
            return BenchRecord(op: "head:\(name)", shape: [B, N, D, C], dtype: precision == .fp32 ? "f32" : precision.rawValue, variant: "fwd+bwd", median_ms: ms,
                               gflops: flops / (ms * 1e6), gbps: Double(B * N * D * 4) / (ms * 1e6), device: dev.name)
        }
        printTable(records)
        var jointRecord: TogetherRecord?
        if together {
            // One token batch for every head (as the trainer feeds them), all steps in one region.
            let heads = try names.compactMap { name -> (String, ProbeHeadLayout)? in
                let head = try HeadName(name)
                guard head.selection == .patches else { return nil }   // [CLS] heads read another tensor
                let pooling = try Heads.pooling(name, HeadOptions(dim: D, tokens: N, queries: 32, heads: 16, classes: C))
                return (name, ProbeHeadLayout(pooling: pooling, classes: C))
            }
            let x = try ctx.tensor((0..<(B * N * D)).map { Float(($0 * 7919) % 2001) / 1000 - 1 }, [B, N, D])
            let steps = try heads.map { try trainingStep($0.1, ctx: ctx, batch: B, tokens: x, precision: precision) }
            // Interleaved: each repeat times the joint step, then every head's step alone on the
            // same batch, so that drift of the machine (large on shared CPUs) hits both sides.
            var joints: [Double] = [], sums: [Double] = [], ratios: [Double] = []
            for i in 0...repeats {
                let joint = try timed(ctx) { for step in steps { try step() } }
                let sum = try steps.reduce(0.0) { total, step in total + (try timed(ctx, step)) }
                if i > 0 { joints.append(joint); sums.append(sum); ratios.append(joint / sum) }
            }
            let joint = median(joints), sum = median(sums)
            print(String(format: "\n%d heads from one batch: %.1f ms; the sum of their single-head steps, timed in the same repeats: %.1f ms (ratio %.2f; median of the per-repeat ratios %.2f, range %.2f–%.2f)",
                         heads.count, joint, sum, joint / sum, median(ratios), ratios.min() ?? .nan, ratios.max() ?? .nan))
            jointRecord = TogetherRecord(heads: heads.map(\.0), shape: [B, N, D, C], device: dev.name, joint_ms: joint, sum_ms: sum,
                                         ratio: joint / sum, joint_ms_repeats: joints, sum_ms_repeats: sums)
        }
        if let profileJSON {
            try writeJSON(profiles, to: profileJSON)
            print("wrote \(profileJSON)")
        }
        let path = json ?? FileManager.default.temporaryDirectory.appendingPathComponent("vkprobe-heads-\(getpid()).json").path
        try writeJSON(records, to: path)
        defer { if json == nil { removeScratchRecords(path) } }
        if json != nil { print("wrote \(path)") }
        if let jointRecord, json != nil {
            let togetherPath = siblingPath(path, "together")
            try writeJSON(jointRecord, to: togetherPath)
            print("wrote \(togetherPath)")
        }
        if let peer {
            let matched = records.compactMap { r -> PeerRecord? in
                let name = String(r.op.dropFirst("head:".count))
                if let e = peerErrors[name] { print("\(r.op): peer failed: \(e)"); return nil }
                guard let t = theirs[name], let o = ours[name], t.count == o.count else { return nil }
                return PeerRecord(r, peer: peer.label, oursRounds: o, peerRounds: t)
            }
            printPeerTable(matched, label: peer.label, rounds: max(1, rounds))
            let peerPath = siblingPath(path, "peer")
            try writeJSON(matched, to: peerPath)
            if json != nil { print("wrote \(peerPath)") }
        } else if !noCompare {
            comparePeer(results: path, gpu: !dev.capabilities.isCPU, extra: upstreamArgs)
        }
    }
}

/// `--together`: every listed head's step from one shared batch against the sum of the same heads
/// alone, timed in the same repeats (one joint step, then each head alone, per repeat).
struct TogetherRecord: Codable {
    var heads: [String]
    var shape: [Int]
    var device: String
    var joint_ms: Double
    var sum_ms: Double
    var ratio: Double
    var joint_ms_repeats: [Double]
    var sum_ms_repeats: [Double]
}
