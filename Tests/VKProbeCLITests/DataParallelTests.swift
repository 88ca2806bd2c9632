import Foundation
import ProbeTestSupport
import SafeTensors
import Testing

/// `mpirun -np N vkprobe train`: N processes, each with its slice of every global batch, must
/// follow one process's trajectory with the same global batch. Needs Open MPI's mpirun
/// (`make test` installs it and sets VKPROBE_REQUIRE_MPI=1, which turns its absence into a failure).
@Suite(.serialized) struct DataParallelTests {
    func available() -> Bool { mpiAvailable() }
    func mpi(_ n: Int, _ args: [String], environment: [String: String] = [:]) throws -> CLIRun { try runVkprobeMPI(n, args, environment: environment) }

    struct Metrics: Decodable { let epoch: Int; let train_loss, train_acc1, val_loss, val_acc1, val_acc5: Double }

    func metrics(_ dir: URL, _ head: String) throws -> [Metrics] {
        try String(contentsOf: dir.appendingPathComponent("\(head)/metrics.jsonl"), encoding: .utf8)
            .split(separator: "\n").map { try JSONDecoder().decode(Metrics.self, from: Data($0.utf8)) }
    }

    /// Same trajectory: every epoch's accuracies equal (a flipped sample would move them by
    /// 1/128 or 1/512) and losses within 1e-5 relative; the final heads within 1e-4 relative
    /// (Frobenius) — the only difference is the order of fp32 sums (per-process partial sums of
    /// gradients and BatchNorm statistics added in Double, then rounded), which 1e-6 per step
    /// covers over these 40 steps with room to spare.
    func expectSameRun(_ a: URL, _ b: URL, heads: [String], _ what: String) throws {
        for h in heads {
            let x = try metrics(a, h), y = try metrics(b, h)
            #expect(x.count == y.count, "\(what) \(h): \(x.count) vs \(y.count) epochs")
            for (p, q) in zip(x, y) {
                #expect(p.val_acc1 == q.val_acc1 && p.val_acc5 == q.val_acc5 && p.train_acc1 == q.train_acc1, "\(what) \(h) epoch \(p.epoch): accuracies differ")
                for (u, v, name) in [(p.train_loss, q.train_loss, "train loss"), (p.val_loss, q.val_loss, "val loss")] {
                    #expect(abs(u - v) <= 1e-5 * abs(u), "\(what) \(h) epoch \(p.epoch) \(name): \(u) vs \(v)")
                }
            }
            let f = try SafeTensorsFile(path: a.appendingPathComponent("\(h)/checkpoint-last.safetensors").path)
            let g = try SafeTensorsFile(path: b.appendingPathComponent("\(h)/checkpoint-last.safetensors").path)
            for name in f.names where try f.entry(name).dtype == .F32 {
                let u = try f.floats(name), v = try g.floats(name)
                let diff = zip(u, v).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +).squareRoot()
                let norm = u.map { Double($0) * Double($0) }.reduce(0, +).squareRoot()
                #expect(diff <= 1e-4 * max(norm, 1e-12), "\(what) \(h) \(name): relative difference \(diff / max(norm, 1e-12))")
            }
        }
    }

    static let heads = ["ep", "lp_gap", "cbam", "dolg"]

    func data(_ dir: URL) throws -> [String] {
        let r = try runVkprobe(["synth", "--output", dir.appendingPathComponent("data").path, "--train-samples", "512", "--val-samples", "128",
                                "--tokens", "16", "--dim", "32"])
        #expect(r.status == 0, "\(r.stderr)")
        return ["train", "--train-tokens", dir.appendingPathComponent("data/train.safetensors").path,
                "--val-tokens", dir.appendingPathComponent("data/val.safetensors").path,
                "--heads", Self.heads.joined(separator: ","), "--epochs", "5", "--global-batch-size", "64", "--warmup-epochs", "1", "--blr", "2"]
    }

    @Test func twoProcessesFollowOneProcess() throws {
        guard available() else { return }
        let dir = try temporaryDirectory("data-parallel")
        let train = try data(dir)
        let one = try runVkprobe(train + ["--output", dir.appendingPathComponent("one").path])
        #expect(one.status == 0, "\(one.stderr)")
        let two = try mpi(2, train + ["--output", dir.appendingPathComponent("two").path])
        #expect(two.status == 0, "\(two.stdout)\n\(two.stderr)")
        #expect(two.stdout.contains("data-parallel over 2 processes"))
        try expectSameRun(dir.appendingPathComponent("one"), dir.appendingPathComponent("two"), heads: Self.heads, "2 processes vs 1")
        // A batch that does not split over the processes is refused, naming both.
        let three = try mpi(3, train + ["--output", dir.appendingPathComponent("three").path])
        #expect(three.status != 0)
        #expect((three.stdout + three.stderr).contains("the global batch 64 (--global-batch-size) does not split evenly over 3 processes"))
        // Upstream's per-GPU --batch_size: two processes of 32 are one process of 64.
        let perProcess = train.map { $0 == "--global-batch-size" ? "--batch-size" : $0 == "64" ? "32" : $0 }
        let halves = try mpi(2, perProcess + ["--output", dir.appendingPathComponent("per-process").path])
        #expect(halves.status == 0, "\(halves.stdout)\n\(halves.stderr)")
        #expect(halves.stdout.contains("batch 64 = 2 × 32 (--batch-size per process), effective 64"), "\(halves.stdout)")
        try expectSameRun(dir.appendingPathComponent("one"), dir.appendingPathComponent("per-process"), heads: Self.heads, "2 × 32 per process vs 64 in one")
    }

    /// One rank killed mid-run: the job stops (mpirun names the process), and the run resumes —
    /// here in one process — to the same end as an uninterrupted run.
    @Test func aKilledRankStopsTheJobAndTheRunResumesWithOtherRanks() throws {
        guard available() else { return }
        let dir = try temporaryDirectory("data-parallel-kill")
        let train = try data(dir)
        let out = dir.appendingPathComponent("run").path
        let killed = try mpi(2, train + ["--output", out], environment: ["VKPROBE_KILL_AT": "step:*:2", "VKPROBE_KILL_RANK": "1"])
        #expect(killed.status != 0)
        #expect((killed.stdout + killed.stderr).contains("signal 9") || (killed.stdout + killed.stderr).contains("Killed"),
                "mpirun's message: \(killed.stdout.suffix(600)) \(killed.stderr.suffix(600))")
        let resumed = try runVkprobe(train + ["--output", out, "--resume"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let reference = try runVkprobe(train + ["--output", dir.appendingPathComponent("reference").path])
        #expect(reference.status == 0)
        try expectSameRun(dir.appendingPathComponent("reference"), URL(fileURLWithPath: out), heads: Self.heads, "killed at epoch 3, resumed in 1 process")
    }
}
