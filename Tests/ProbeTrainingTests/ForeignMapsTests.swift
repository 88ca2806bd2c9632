import Foundation
import ProbeKernels
import ProbeTestSupport
import ProbeTraining
import SafeTensors
import Testing

/// The attention maps of an EP head trained by upstream's code (saved by its `misc.save_model`,
/// converted; `Tests/Goldens/foreign/pth_ep.safetensors`) equal those PyTorch computes with
/// upstream's `EfficientProbing` module on the same tokens (`ep_maps.safetensors`, written by
/// Bench/tools/make_foreign_heads.py): what `vkprobe maps --head-checkpoint` draws.
@Suite struct ForeignMapsTests {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Goldens/foreign")

    @Test func upstreamEPHeadsMapsMatchPyTorch() throws {
        let ctx = try makeContext()
        let model = try EPMapsModel(checkpoint: Self.dir.appendingPathComponent("pth_ep.safetensors").path, ctx: ctx)
        let val = try SafeTensorsFile(path: Self.dir.appendingPathComponent("val.safetensors").path)
        let shape = try val.entry("tokens").shape
        let (N, D) = (shape[1], shape[2])
        let tokens = Array(try val.floats("tokens")[0..<(8 * N * D)])
        let (maps, _) = try model.attention(try ctx.tensor(tokens, [8, N, D]))
        let want = try SafeTensorsFile(path: Self.dir.appendingPathComponent("ep_maps.safetensors").path).floats("expected.maps")
        #expect(maps.count == want.count && maps.count == 8 * model.queries * N)
        // Softmax over N = 16 dot products of width 32 in fp32: 1e-6 relative is a few ulps.
        let err = relativeError(maps, want)
        #expect(err <= 1e-5, "maps: relative error \(err)")
        expectNoValidationMessages(ctx)
    }
}
