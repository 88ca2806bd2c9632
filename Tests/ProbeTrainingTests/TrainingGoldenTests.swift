import Foundation
import ProbeAutodiff
import ProbeHeads
import ProbeKernels
import SafeTensors
import ProbeTestSupport
import Testing
@testable import ProbeTraining

/// A whole probe head trained with the upstream protocol: every step's loss within 1e-3 relative
/// and the final tensors within 1e-3 relative (fp32 trajectories drift by rounding over the steps;
/// the issue fixes these bounds).
@Suite(.serialized) struct TrainingGoldenTests {
    static let files = goldenFiles { $0 == .training }

    @Test func trainingGoldensArePresent() {
        #expect(!Self.files.isEmpty, "no train_*.safetensors in \(goldensDirectory.path) (set PROBE_GOLDENS)")
    }

    @Test(arguments: files)
    func golden(_ fileName: String) throws { try checkTrainingGolden(goldensDirectory.appendingPathComponent(fileName).path) }
}

func checkTrainingGolden(_ path: String) throws {
    let f = try SafeTensorsFile(path: path)
    func meta(_ k: String) -> String? { f.metadata[k]?.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
    guard let head = meta("head"), let dim = meta("dim").flatMap(Int.init), let tokens = meta("tokens").flatMap(Int.init),
          let classes = meta("classes").flatMap(Int.init), let batch = meta("batch").flatMap(Int.init),
          let steps = meta("steps").flatMap(Int.init), let samples = meta("samples").flatMap(Int.init),
          let stepsPerEpoch = meta("steps_per_epoch").flatMap(Double.init), let epochs = meta("epochs").flatMap(Double.init),
          let warmup = meta("warmup_epochs").flatMap(Double.init), let baseLR = meta("base_lr").flatMap(Double.init) else {
        Issue.record("\(path): incomplete training metadata \(f.metadata)"); return
    }
    var optimizer = OptimizerConfig(kind: OptimizerKind(rawValue: meta("optimizer") ?? "lars") ?? .lars,
                                    weightDecay: meta("weight_decay").flatMap(Double.init) ?? 0)
    optimizer.momentum = meta("momentum").flatMap(Double.init) ?? 0.9
    optimizer.trust = meta("trust_coefficient").flatMap(Double.init) ?? 0.001
    let options = HeadOptions(dim: dim, tokens: tokens, queries: meta("queries").flatMap(Int.init) ?? 32,
                              heads: meta("heads").flatMap(Int.init) ?? 16, classes: classes)
    let layout = ProbeHeadLayout(pooling: try Heads.pooling(head, options), classes: classes)
    let ctx = try makeContext()
    let gpu = GPUBackend(ctx)
    let trainer = try HeadTrainer(name: head, layout: layout, gpu: gpu, optimizer: optimizer, seed: 0)
    // Initial tensors under upstream names.
    let initial = try ProbeHeadState(layout: layout, backend: gpu, file: f)
    for s in trainer.state.pooling.specs { trainer.state.pooling.values[s.name] = initial.pooling.values[s.name] }
    for s in trainer.state.bn.specs { trainer.state.bn.values[s.name] = initial.bn.values[s.name] }
    for s in trainer.state.linear.specs { trainer.state.linear.values[s.name] = initial.linear.values[s.name] }
    let x = try f.floats("input.x"), labels = try f.ints("input.labels").map(Int32.init)
    let schedule = LearningRateSchedule(peak: baseLR, warmupEpochs: warmup, epochs: epochs)
    let expectedLoss = try f.floats("expected.loss"), expectedLR = try f.floats("expected.lr")
    let rowSize = tokens * dim
    for step in 0..<steps {
        let indices = (0..<batch).map { (step * batch + $0) % samples }
        var flat: [Float] = []
        for i in indices { flat += x[(i * rowSize)..<((i + 1) * rowSize)] }
        var b = DeviceBatch(tokens: try ctx.tensor(flat, [batch, tokens, dim]), cls: nil,
                            labels: try ctx.tensor(indices.map { labels[$0] }, [batch]), size: batch, all: nil)
        let lr = schedule.lr(atEpoch: Double(step) / stepsPerEpoch)
        #expect(abs(lr - Double(expectedLR[step])) <= 1e-6 * max(1, abs(lr)), "\(head) step \(step): lr \(lr), upstream \(expectedLR[step])")
        let r = try trainer.run(&b, train: true, gradScale: 1 / Float(batch), applyStep: lr)
        let loss = r.lossSum / Double(batch)
        #expect(abs(loss - Double(expectedLoss[step])) <= 1e-3 * abs(Double(expectedLoss[step])),
                "\(head) step \(step): loss \(loss), upstream \(expectedLoss[step])")
    }
    let finals = f.names.filter { $0.hasPrefix("expected.final.") }
    #expect(!finals.isEmpty)
    for key in finals {
        let name = String(key.dropFirst("expected.final.".count))
        let value: Tensor?
        if name.hasPrefix(layout.linearPrefix) { value = trainer.state.linear.values[String(name.dropFirst(2))] }
        else if name.hasPrefix(layout.bnPrefix) { value = trainer.state.bn.values[String(name.dropFirst(2))] }
        else { value = trainer.state.pooling.values[String(name.dropFirst(2))] }
        guard let value else { Issue.record("\(head): no tensor \(name)"); continue }
        let err = relativeError(try ctx.read(value), try f.floats(key))
        #expect(err <= 1e-3, "\(head): final \(name) relative error \(err)")
    }
    expectNoValidationMessages(ctx)
}
