import ArgumentParser
import Foundation
import ProbeAutodiff
import ProbeBackbones
import ProbeKernels
import ProbeShaders
import VulkanCompute

struct BackboneBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "backbone",
        abstract: "Images/s of the frozen ViT forward (ViT-S/16, ViT-B/16, random weights, 224 px), side by side with timm in PyTorch.")

    @Flag(help: "Small: batch 1 and 4 only, two repeats.") var quick = false
    @Option(help: "Batch sizes (comma-separated).") var batchSizes = "1,8,32,64"
    @Option(help: "Models (timm names).") var models = "vit_small_patch16_224,vit_base_patch16_224"
    @Option(help: "fp32 or fp16 (default: fp16 on GPUs with 16-bit storage, fp32 on CPU devices).") var precision: String?
    @Option(help: "Image size.") var imageSize = 224
    @Option(help: "Timed repeats.") var repeats = 3
    @Option(help: "Write the records as JSON to this file.") var json: String?
    @Option(help: "Device index or name substring.") var device: String?
    @Flag(help: "Skip the side-by-side PyTorch run.") var noCompare = false
    @Flag(help: "Also print each forward's per-op profile (GPU timestamps around every dispatch), once per model and batch size.") var profile = false
    @Option(help: "With --profile: write the profiles as JSON to this file.") var profileJSON: String?
    @Flag(help: "Time a fine-tuning step instead (forward, backward of the trained part, SGD with momentum over its tensors; fp32), beside timm's (forward_features, backward, torch.optim.SGD) on the same device class.") var train = false
    @Option(help: "With --train: what trains, all or the last K blocks (as vkprobe train --finetune).") var finetune = "all"
    @Flag(help: "With --train: recompute each block in the backward (--grad-checkpoint).") var gradCheckpoint = false
    @Option(help: "Rounds over the models and batch sizes (forward only). With the PyTorch peer, each case is timed and then timm's, in every round; the ratio reported is the median of the per-round ratios (a shared machine drifts by tens of per cent over minutes).") var rounds = 1

    func run() throws {
        let dev = try ComputeDevice(options: DeviceOptions(selector: device).applying(environment: benchEnvironment), shaders: BundledShaders.shared)
        let ctx = try KernelContext(device: dev, tuning: benchTuning)
        let p = try precision.map { guard let v = Precision(rawValue: $0) else { throw BackboneError("--precision fp32|fp16") }; return v }
            ?? .standard(for: dev.capabilities)
        let batches = quick ? [1, 4] : batchSizes.split(separator: ",").compactMap { Int($0) }
        print("device: \(dev.name); \(p.rawValue); images \(imageSize) px")
        var records: [BenchRecord] = []
        var profiles: [String: ProfileReport] = [:]
        // Forward cases, each timed once per round; with --rounds the peer right after each.
        var cases: [(name: String, vit: VisionTransformer, depth: Int, macs: Int)] = []
        for name in models.split(separator: ",").map(String.init) {
            var config = try ViTRegistry.config(name)
            config.imgSize = imageSize
            let vit = try VisionTransformer(weights: ViTWeights.random(config), ctx: ctx, precision: train ? .fp32 : p)
            let tokens = (imageSize / config.patchSize) * (imageSize / config.patchSize) + config.prefixTokens
            // Multiply-adds per image: patch embedding, qkv, attention, proj, MLP.
            let D = config.embedDim, T = tokens
            let macs = (T - config.prefixTokens) * 3 * config.patchSize * config.patchSize * D
                + config.depth * (T * D * 3 * D + 2 * T * T * D + T * D * D + 2 * T * D * config.mlpHidden)
            if train {
                records += try trainSteps(name, config, vit, ctx, batches)
                continue
            }
            cases.append((name, vit, config.depth, macs))
        }
        let peer = rounds > 1 && !noCompare && !train ? PeerServer(gpu: !dev.capabilities.isCPU, extra: []) : nil
        var ours: [String: [Double]] = [:], theirs: [String: [Double]] = [:], peerErrors: [String: String] = [:], peaks: [String: Int] = [:]
        for round in 0..<max(1, rounds) {
            for c in cases {
                for b in batches {
                    let key = "\(c.name) \(b)"
                    let x = try ctx.tensor([Float](repeating: 0.1, count: b * 3 * imageSize * imageSize), [b, 3, imageSize, imageSize])
                    dev.memory.resetPeak()
                    let ms = try measure(ctx, warmup: 1, repeats: quick ? 2 : repeats) { _ = try c.vit.forward(x, taps: [.block(c.depth - 1)]) }
                    ours[key, default: []].append(ms)
                    peaks[key] = max(peaks[key] ?? 0, dev.memory.peakUsedBytes)
                    if let peer, peerErrors[key] == nil {
                        switch peer.time(op: "backbone:\(c.name)", shape: [b, 3, imageSize, imageSize], repeats: quick ? 2 : repeats) {
                        case .success(let t): theirs[key, default: []].append(t)
                        case .failure(let e): peerErrors[key] = e.description
                        }
                    }
                    if profile && round == 0 {
                        let report = try ctx.profile { _ = try c.vit.forward(x, taps: [.block(c.depth - 1)]) }
                        profiles["\(c.name) batch \(b)"] = report
                        print("\n\(c.name): one forward at batch \(b), \(imageSize) px, \(p.rawValue)\n" + report.table(limit: 25) + "\n")
                    }
                    print(String(format: "  %@ batch %d: %.1f images/s (%.1f ms), peak device memory %@ (weights %@)", c.name, b,
                                 Double(b) / (ms / 1e3), ms, formatBytes(peaks[key]!), formatBytes(c.vit.weightBytes)))
                }
            }
        }
        var keyed: [(String, BenchRecord)] = []
        for c in cases {
            for b in batches {
                let key = "\(c.name) \(b)", ms = median(ours[key]!)
                keyed.append((key, BenchRecord(op: "backbone:\(c.name)", shape: [b, 3, imageSize, imageSize], dtype: p == .fp16 ? "f16" : "f32",
                                               variant: "forward", median_ms: ms, gflops: 2 * Double(c.macs * b) / (ms * 1e6),
                                               gbps: nil, device: dev.name, images_per_s: Double(b) / (ms / 1e3), peak_memory_bytes: peaks[key])))
            }
        }
        records += keyed.map(\.1)
        printTable(records)
        if let profileJSON {
            try writeJSON(profiles, to: profileJSON)
            print("wrote \(profileJSON)")
        }
        let path = json ?? FileManager.default.temporaryDirectory.appendingPathComponent("vkprobe-backbone-\(getpid()).json").path
        try writeJSON(records, to: path)
        defer { if json == nil { removeScratchRecords(path) } }
        if json != nil { print("wrote \(path)") }
        if let peer {
            let matched = keyed.compactMap { key, r -> PeerRecord? in
                if let e = peerErrors[key] { print("\(r.op): peer failed: \(e)"); return nil }
                guard let t = theirs[key], let o = ours[key], t.count == o.count else { return nil }
                return PeerRecord(r, peer: peer.label, oursRounds: o, peerRounds: t)
            }
            printPeerTable(matched, label: peer.label, rounds: rounds)
            let peerPath = siblingPath(path, "peer")
            try writeJSON(matched, to: peerPath)
            if json != nil { print("wrote \(peerPath)") }
        } else if !noCompare {
            comparePeer(results: path, gpu: !dev.capabilities.isCPU)
        }
    }

    /// One fine-tuning step per batch size: the frozen part's forward, the trained part's forward
    /// and backward from a fixed gradient at its output tokens, and an SGD step (momentum 0.9)
    /// on each trained tensor. Multiply-adds: the forward's, and twice the trained part's again
    /// for the backward (input and weight gradients).
    func trainSteps(_ name: String, _ config: ViTConfig, _ vit: VisionTransformer, _ ctx: KernelContext, _ batches: [Int]) throws -> [BenchRecord] {
        let scope = try FineTuneScope.parse(finetune, depth: config.depth)
        let gpu = GPUBackend(ctx)
        let trained = try TrainableViT(weights: vit.weights, scope: scope, appliesNorm: true, backend: gpu)
        trained.checkpointBlocks = gradCheckpoint
        var momenta: [String: Tensor] = [:]
        for (n, shape) in trained.specs { momenta[n] = try gpu.zeros(shape) }
        let gh = imageSize / config.patchSize, T = gh * gh + config.prefixTokens, D = config.embedDim
        let first = scope.firstBlock(depth: config.depth)
        let blockMACs = T * D * 3 * D + 2 * T * T * D + T * D * D + 2 * T * D * config.mlpHidden
        let embedMACs = gh * gh * 3 * config.patchSize * config.patchSize * D
        let macs = embedMACs + config.depth * blockMACs + 2 * ((config.depth - first) * blockMACs + (scope.trainsEmbeddings ? embedMACs : 0))
        var records: [BenchRecord] = []
        for b in batches {
            let x = try ctx.tensor([Float](repeating: 0.1, count: b * 3 * imageSize * imageSize), [b, 3, imageSize, imageSize])
            let upstream = try ctx.tensor([Float](repeating: 1e-3, count: b * T * D), [b, T, D])
            func step() throws {
                let input = try vit.fineTuneInput(x, firstBlock: first, embeddings: scope.trainsEmbeddings)
                let g = Graph(gpu, training: true)
                let (out, params) = try trained.forward(g, input: input, gridH: gh, gridW: gh, train: true)
                try g.backward(out, grad: upstream)
                for (n, v) in params {
                    guard let grad = v.grad else { continue }
                    try ctx.optimizerStep(.sgd(lr: 1e-4, momentum: 0.9, weightDecay: 0), param: trained.values[n]!, grad: grad, state1: momenta[n])
                }
            }
            ctx.device.memory.resetPeak()
            let ms = try measure(ctx, warmup: 1, repeats: quick ? 2 : repeats) { try step() }
            let peak = ctx.device.memory.peakUsedBytes
            if profile {
                let report = try ctx.profile { try step() }
                print("\n\(name): one fine-tuning step at batch \(b) (--finetune \(scope))\n" + report.table(limit: 30) + "\n")
            }
            records.append(BenchRecord(op: "backbone-train:\(name)", shape: [b, 3, imageSize, imageSize], dtype: "f32",
                                       variant: "finetune-\(scope)" + (gradCheckpoint ? "-ckpt" : ""), median_ms: ms, gflops: 2 * Double(macs * b) / (ms * 1e6),
                                       gbps: nil, device: ctx.device.name, images_per_s: Double(b) / (ms / 1e3), peak_memory_bytes: peak))
            print(String(format: "  %@ batch %d, --finetune %@: %.1f images/s (%.1f ms a step), peak device memory %@", name, b, scope.description,
                         Double(b) / (ms / 1e3), ms, formatBytes(peak)))
        }
        return records
    }
}
