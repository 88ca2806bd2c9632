import Foundation
import ProbeTestSupport
import Testing
@testable import ProbeKernels
@testable import ProbeTraining

/// k-NN against an independent reference of upstream's rule (DINO's `knn_classifier`): in Swift
/// (Double similarities, a full sort), and in NumPy where /usr/bin/python3 has it.
@Suite struct KNNTests {
    // A fixed small case: 7 classes around random centres, noisy samples.
    static let (S, Q, D, C) = (300, 60, 16, 7)
    static func data(_ n: Int, seed: UInt64) -> ([Float], [Int32]) {
        let centres = randomValues(C * D, seed: 99)
        let noise = randomValues(n * D, seed: seed)
        var f: [Float] = [], l: [Int32] = []
        for i in 0..<n {
            let c = (i * 5 + Int(seed)) % C
            l.append(Int32(c))
            for d in 0..<D { f.append(Float(centres[c * D + d] + 1.8 * noise[i * D + d])) }
        }
        return (f, l)
    }

    /// The rule written out directly: normalise, every similarity, sorted; votes exp(s/T).
    func reference(train: ([Float], [Int32]), test: ([Float], [Int32]), k: Int, T: Double) -> (Double, Double) {
        func unit(_ f: [Float], _ i: Int) -> [Double] {
            let v = (0..<Self.D).map { Double(f[i * Self.D + $0]) }
            let n = max(v.map { $0 * $0 }.reduce(0, +).squareRoot(), 1e-12)
            return v.map { $0 / n }
        }
        let bank = (0..<train.1.count).map { unit(train.0, $0) }
        var t1 = 0, t5 = 0
        for q in 0..<test.1.count {
            let x = unit(test.0, q)
            let sims = bank.map { zip($0, x).map(*).reduce(0, +) }
            let order = sims.indices.sorted { sims[$0] > sims[$1] || (sims[$0] == sims[$1] && $0 < $1) }.prefix(k)
            var score = [Double](repeating: 0, count: Self.C)
            for j in order { score[Int(train.1[j])] += exp(sims[j] / T) }
            let ranked = (0..<Self.C).sorted { score[$0] > score[$1] || (score[$0] == score[$1] && $0 < $1) }
            if ranked[0] == Int(test.1[q]) { t1 += 1 }
            if ranked.prefix(5).contains(Int(test.1[q])) { t5 += 1 }
        }
        return (100 * Double(t1) / Double(test.1.count), 100 * Double(t5) / Double(test.1.count))
    }

    @Test func matchesTheReferenceWholeAndChunked() throws {
        let train = Self.data(Self.S, seed: 1), test = Self.data(Self.Q, seed: 2)
        let ks = [1, 5, 20, 100], Ts = [0.07, 0.5]
        let ctx = try makeContext()
        let whole = try KNNClassifier(ctx: ctx, features: train.0, labels: train.1, dim: Self.D, classes: Self.C)
        #expect(whole.chunkCount == 1)
        let got = try whole.evaluate(features: test.0, labels: test.1, ks: ks, temperatures: Ts)
        for r in got {
            let (w1, w5) = reference(train: train, test: test, k: r.k, T: r.T)
            #expect(r.top1 == w1 && r.top5 == w5, "k \(r.k) T \(r.T): \(r.top1)/\(r.top5) vs \(w1)/\(w5)")
        }
        #expect(Set(got.map(\.top1)).count > 1, "the settings differ on this case")
        // A bank larger than one binding (4 KiB: 64 rows of 16 floats) is held in chunks.
        let small = try makeContext(maxBindingBytes: 4096)
        let chunked = try KNNClassifier(ctx: small, features: train.0, labels: train.1, dim: Self.D, classes: Self.C)
        chunked.testBlock = 16
        #expect(chunked.chunkCount > 1)
        let again = try KNNClassifier(ctx: small, features: train.0, labels: train.1, dim: Self.D, classes: Self.C, maxChunkRows: 37)
        again.testBlock = 16
        #expect(try again.evaluate(features: test.0, labels: test.1, ks: ks, temperatures: Ts) == got)
        expectNoValidationMessages(small)
        expectNoValidationMessages(ctx)
    }

    /// The same case in NumPy, written as upstream's function computes it (normalise, mm, topk,
    /// one-hot votes weighted by exp(d/T), sort) — run where /usr/bin/python3 has NumPy.
    @Test func matchesNumPyWherePresent() throws {
        let python = "/usr/bin/python3"
        guard FileManager.default.isExecutableFile(atPath: python) else { return }
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: python); probe.arguments = ["-c", "import numpy"]
        probe.standardError = FileHandle.nullDevice
        try probe.run(); probe.waitUntilExit()
        guard probe.terminationStatus == 0 else { return }
        let train = Self.data(Self.S, seed: 1), test = Self.data(Self.Q, seed: 2)
        let dir = try temporaryDirectory("knn")
        let input = ["train": train.0.map(Double.init), "test": test.0.map(Double.init),
                     "ytrain": train.1.map(Double.init), "ytest": test.1.map(Double.init)]
        try JSONSerialization.data(withJSONObject: input).write(to: dir.appendingPathComponent("in.json"))
        let script = """
        import json, numpy as np, sys
        d = json.load(open(sys.argv[1])); D = \(Self.D); C = \(Self.C)
        tr = np.array(d["train"], np.float32).reshape(-1, D); te = np.array(d["test"], np.float32).reshape(-1, D)
        ytr = np.array(d["ytrain"], np.int64); yte = np.array(d["ytest"], np.int64)
        tr /= np.maximum(np.linalg.norm(tr, axis=1, keepdims=True), 1e-12); te /= np.maximum(np.linalg.norm(te, axis=1, keepdims=True), 1e-12)
        out = []
        for T in (0.07, 0.5):
            for k in (1, 5, 20, 100):
                sim = te @ tr.T
                idx = np.argsort(-sim, axis=1, kind="stable")[:, :k]
                dist = np.take_along_axis(sim, idx, 1)
                onehot = np.zeros((len(te), k, C), np.float32)
                np.put_along_axis(onehot, ytr[idx][:, :, None], 1, axis=2)
                probs = (onehot * np.exp(dist / np.float32(T))[:, :, None]).sum(1)
                pred = np.argsort(-probs, axis=1, kind="stable")
                correct = pred == yte[:, None]
                out.append(dict(k=k, T=T, top1=100.0 * correct[:, :1].sum() / len(te), top5=100.0 * correct[:, :5].sum() / len(te)))
        print(json.dumps(out))
        """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = ["-c", script, dir.appendingPathComponent("in.json").path]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let numpy = try JSONDecoder().decode([KNNResult].self, from: data)
        let ctx = try makeContext()
        let ours = try KNNClassifier(ctx: ctx, features: train.0, labels: train.1, dim: Self.D, classes: Self.C)
            .evaluate(features: test.0, labels: test.1, ks: [1, 5, 20, 100], temperatures: [0.07, 0.5])
        #expect(ours == numpy, "ours \(ours.map { ($0.k, $0.T, $0.top1, $0.top5) }) numpy \(numpy.map { ($0.k, $0.T, $0.top1, $0.top5) })")
    }

    /// Upstream's `final_norm` variant — `F.normalize` then the encoder's LayerNorm — against the
    /// same two lines in NumPy (float64), within 1e-6 relative (fp32 storage of the result).
    @Test func finalNormIsUpstreamsVariant() throws {
        let python = "/usr/bin/python3"
        let D = 12, n = 7
        let x = randomValues(n * D, seed: 9, lo: -3, hi: 4).map { Float($0) }
        let w = randomValues(D, seed: 10, lo: 0.5, hi: 1.5).map { Float($0) }, b = randomValues(D, seed: 11, lo: -0.3, hi: 0.3).map { Float($0) }
        let ours = try KNNClassifier.finalNorm(x, dim: D, weight: w, bias: b, eps: 1e-6)
        let script = """
        import json, sys, numpy as np
        d = json.loads(sys.argv[1]); x = np.array(d["x"], np.float64).reshape(-1, \(D)); w = np.array(d["w"]); b = np.array(d["b"])
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        m = x.mean(1, keepdims=True); v = x.var(1, keepdims=True)
        print(json.dumps(((x - m) / np.sqrt(v + 1e-6) * w + b).ravel().tolist()))
        """
        let input = String(decoding: try JSONSerialization.data(withJSONObject: ["x": x.map(Double.init), "w": w.map(Double.init), "b": b.map(Double.init)]), as: UTF8.self)
        let run = try runProgram(URL(fileURLWithPath: python), ["-c", script, input], environment: ProcessInfo.processInfo.environment)
        #expect(run.status == 0, "NumPy (python3-numpy, installed by make test): \(run.stderr)")
        let want = try JSONDecoder().decode([Double].self, from: Data(run.stdout.utf8))
        #expect(relativeError(ours, want) <= 1e-6)
        #expect(throws: TrainingError.self) { try KNNClassifier.finalNorm(x, dim: D, weight: Array(w.prefix(5)), bias: b, eps: 1e-6) }
    }
}
