import Logging
import Foundation
import ProbeKernels
import ProbeTestSupport
import Testing
@testable import ProbeTraining
import VulkanCompute

@Suite(.serialized) struct SweepTests {
    /// A grid of 3 learning rates × 2 heads in one pass: each probe ends exactly where a separate
    /// run with its setting ends (same metrics, same tensors); the summary names the best per head;
    /// a resumed grid continues every probe.
    @Test func gridProbesEqualSeparateRuns() throws {
        let dir = try temporaryDirectory("sweep")
        let (trainPath, valPath) = try smallTask(dir)
        let ctx = try makeContext()
        var config = smallConfig(["ep", "lp_gap"])
        config.sweep.lr = [0.3, 1.0, 3.0]
        let grid = try Trainer(config: config, ctx: ctx, train: try .init(path: trainPath), val: try .init(path: valPath),
                               output: dir.appendingPathComponent("grid"))
        grid.logger = .silent
        let summary = try grid.run()
        #expect(summary.keys.sorted() == ["ep/lr0.3", "ep/lr1", "ep/lr3", "lp_gap/lr0.3", "lp_gap/lr1", "lp_gap/lr3"])
        for (head, lr, name) in [("ep", 3.0, "lr3"), ("lp_gap", 0.3, "lr0.3")] {
            var single = smallConfig([head])
            single.lr = lr
            let alone = try Trainer(config: single, ctx: ctx, train: try .init(path: trainPath), val: try .init(path: valPath),
                                    output: dir.appendingPathComponent("alone-\(head)"))
            alone.logger = .silent
            let s = try alone.run()
            #expect(try metricsWithoutTime(dir.appendingPathComponent("grid/\(head)"), name) == metricsWithoutTime(dir.appendingPathComponent("alone-\(head)"), head))
            #expect(s[head]!.best_acc1 == summary["\(head)/\(name)"]!.best_acc1)
            let a = try Data(contentsOf: dir.appendingPathComponent("grid/\(head)/\(name)/checkpoint-last.safetensors"))
            let b = try Data(contentsOf: dir.appendingPathComponent("alone-\(head)/\(head)/checkpoint-last.safetensors"))
            #expect(a == b, "\(head) at \(name): the grid's tensors equal the separate run's")
        }
        let run = try JSONDecoder().decode(RunSummary.self, from: Data(contentsOf: dir.appendingPathComponent("grid/summary.json")))
        let bestEP = try #require(run.best?["ep"])
        #expect(summary[bestEP]!.best_acc1 == ["ep/lr0.3", "ep/lr1", "ep/lr3"].map { summary[$0]!.best_acc1 }.max())
        #expect(run.heads.values.allSatisfy { ($0.train_images_per_s ?? 0) > 0 && $0.macs_per_image != nil })
        // Resume: one more epoch for every probe.
        config.epochs = 4
        let more = try Trainer(config: config, ctx: ctx, train: try .init(path: trainPath), val: try .init(path: valPath),
                               output: dir.appendingPathComponent("grid"))
        more.logger = .silent
        #expect(throws: TrainingError.self) { try more.resume() }   // the epoch count is part of each probe's fingerprint
        expectNoValidationMessages(ctx)
    }

    /// A grid whose parameters and optimiser state cannot fit is refused before anything runs,
    /// naming its size and how many probes fit.
    @Test func aGridThatCannotFitIsRefused() throws {
        let dir = try temporaryDirectory("sweep-big")
        let (trainPath, valPath) = try smallTask(dir, dim: 256)
        let device = try makeTestDevice { $0.memoryBudget = 256 << 20 }
        let ctx = try KernelContext(device: device)
        var config = smallConfig(["dinovit"])
        config.sweep.lr = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
        config.sweep.weightDecay = [0, 0.01, 0.05, 0.1]
        #expect { try Trainer(config: config, ctx: ctx, train: try .init(path: trainPath), val: try .init(path: valPath), output: dir) } throws: {
            "\($0)".contains("the sweep of 32 probes") && "\($0)".contains("fit")
        }
    }
}
