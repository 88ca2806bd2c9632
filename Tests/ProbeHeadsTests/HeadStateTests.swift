import Foundation
import ProbeAutodiff
import ProbeHeads
import SafeTensors
import ProbeTestSupport
import Testing

@Suite struct HeadStateTests {
    @Test func parameterCountsMatchUpstream() throws {
        // HEADS.md, ViT-B (D = 768, N = 196) with a 1000-class classifier.
        let o = HeadOptions(dim: 768, tokens: 196)
        let expected: [String: Int] = ["ep": 1_383_400, "lp": 769_000, "abmilp": 5 * 768 * 768 + 3 * 768 + 1 + 769_000,
                                       "simpool": 2 * 768 * 768 + 2 * 768 + 769_000, "esimpool": 2 * 768 + 769_000,
                                       "clip": 4 * 768 * 768 + (196 + 7) * 768 + 769_000, "siglip": 12 * 768 * 768 + 10 * 768 + 769_000,
                                       "aim": 2 * 768 * 768 + 768 + 769_000, "cbam": 768 * 768 / 8 + 100 + 769_000, "coca": 1349 * 768 + 769_000,
                                       "cait": 12 * 768 * 768 + 18 * 768 + 769_000, "dinovit": 12 * 768 * 768 + 10 * 768 + 769_000,
                                       "jepa": 12 * 768 * 768 + 14 * 768 + 769_000, "dolg": 768 * 768 + 4 * 768 + 1 + 769_000,
                                       "cae": 4 * 768 * 768 + 10 * 768 + 769_000]
        for (name, count) in expected {
            let layout = ProbeHeadLayout(pooling: try Heads.pooling(name, o), classes: 1000)
            #expect(layout.totalParameterCount == count, "\(name)")
        }
    }

    @Test func badConfigurationsAreRefusedClearly() {
        #expect { try Heads.pooling("ep", HeadOptions(dim: 100, tokens: 196, queries: 32)) } throws: { "\($0)".contains("not divisible by the query count") }
        for grid in ["clip", "cbam", "dolg"] {
            #expect { try Heads.pooling(grid, HeadOptions(dim: 64, tokens: 17)) } throws: { "\($0)".contains("square grid") }
            #expect { try Heads.pooling(grid + "_all", HeadOptions(dim: 64, tokens: 197)) } throws: { "\($0)".contains("square grid") }
        }
        #expect { try Heads.pooling("nope", HeadOptions(dim: 64, tokens: 16)) } throws: { "\($0)".contains("unknown head") }
        #expect(throws: Never.self) { try Heads.pooling("ep_all", HeadOptions(dim: 64, tokens: 197, queries: 8)) }
    }

    @Test(arguments: ["ep", "lp", "aim", "cbam"])
    func savedHeadsLoadBackWithUpstreamNames(_ name: String) throws {
        let dir = try temporaryDirectory("vkprobe-heads")
        defer { try? FileManager.default.removeItem(at: dir) }
        let layout = ProbeHeadLayout(pooling: try Heads.pooling(name, HeadOptions(dim: 32, tokens: 16, queries: 4, heads: 4, classes: 7)), classes: 7)
        let cpu = CPUBackend()
        let state = try ProbeHeadState(layout: layout, backend: cpu, seed: 5)
        state.batchesTracked = 12
        let path = dir.appendingPathComponent("head.safetensors").path
        try state.save(to: path)
        let file = try SafeTensorsFile(path: path)
        let poolingBNCounters = layout.pooling.parameters.filter { $0.name.hasSuffix(".running_mean") }
            .map { "0." + $0.name.dropLast("running_mean".count) + "num_batches_tracked" }
        let expectedNames = layout.isLinearProbe
            ? ["0.num_batches_tracked", "0.running_mean", "0.running_var", "1.bias", "1.weight"]
            : (layout.pooling.parameters.map { "0." + $0.name } + poolingBNCounters
               + ["1.num_batches_tracked", "1.running_mean", "1.running_var", "2.bias", "2.weight"]).sorted()
        if name == "aim" { #expect(file.names.contains("0.bn.num_batches_tracked")) }
        if name == "cbam" { #expect(file.names.contains("0.spatial.conv.bn.num_batches_tracked")) }
        #expect(file.names == expectedNames)
        #expect(try file.entry(layout.prefix(.batchNorm) + "num_batches_tracked").dtype == .I64)
        let loaded = try ProbeHeadState(layout: layout, backend: cpu, file: file)
        #expect(loaded.batchesTracked == 12)
        let (a, b) = (try state.snapshot(), try loaded.snapshot())
        #expect(a.tensors.map(\.name) == b.tensors.map(\.name))
        for (x, y) in zip(a.tensors, b.tensors) { #expect(x.values == y.values, "\(x.name)") }
    }

    @Test func checkpointsWithWrongTensorsListEveryProblem() throws {
        let dir = try temporaryDirectory("vkprobe-heads")
        defer { try? FileManager.default.removeItem(at: dir) }
        let layout = ProbeHeadLayout(pooling: try Heads.pooling("ep", HeadOptions(dim: 32, tokens: 16, queries: 4, classes: 7)), classes: 7)
        var w = SafeTensorsWriter()
        w.add("0.cls_token", [Float](repeating: 0, count: 4 * 32), shape: [1, 4, 32])
        w.add("0.v.weight", [Float](repeating: 0, count: 32 * 16), shape: [16, 32])          // mis-shaped
        w.add("0.k.weight", [Float](repeating: 0, count: 32 * 32), shape: [32, 32])          // unexpected
        w.add("1.running_mean", [Float](repeating: 0, count: 32), shape: [32])
        w.add("2.weight", [Float](repeating: 0, count: 7 * 32), shape: [7, 32])
        let path = dir.appendingPathComponent("bad.safetensors").path
        try w.write(to: path)
        do {
            _ = try ProbeHeadState(layout: layout, backend: CPUBackend(), file: try SafeTensorsFile(path: path))
            Issue.record("expected an error")
        } catch {
            let text = "\(error)"
            #expect(text.contains("missing") && text.contains("1.running_var") && text.contains("2.bias"), "\(text)")
            #expect(text.contains("unexpected") && text.contains("0.k.weight"), "\(text)")
            #expect(text.contains("mis-shaped") && text.contains("0.v.weight"), "\(text)")
        }
        // A truncated file is refused with its name.
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        try data.prefix(data.count - 10).write(to: URL(fileURLWithPath: path))
        #expect { try SafeTensorsFile(path: path) } throws: { "\($0)".contains("bad.safetensors") && "\($0)".contains("outside") }
    }
}
