import Foundation
import ProbeTestSupport
import Testing
@testable import ProbeKernels

@Suite struct ProfileTests {
    /// Every dispatch of a profiled block is timed and labelled with its op and shapes; GEMMs carry
    /// their FLOPs; nothing is recorded outside `profile`.
    @Test func labelsAndTimesEveryDispatch() throws {
        let ctx = try makeContext()
        let a = try ctx.tensor(randomValues(24 * 40, seed: 1).map(Float.init), [24, 40])
        let b = try ctx.tensor(randomValues(40 * 16, seed: 2).map(Float.init), [40, 16])
        _ = try ctx.matmul(a, b)   // not profiled
        let before = ctx.stream.dispatchCount
        let report = try ctx.profile(steps: 2) {
            let c = try ctx.matmul(a, b)
            _ = try ctx.softmax(c)
        }
        let dispatched = ctx.stream.dispatchCount - before
        #expect(report.rows.reduce(0) { $0 + $1.calls } * 2 == dispatched, "calls are per step")
        let gemm = try #require(report.rows.first { $0.op.hasPrefix("gemm 24×40, 40×16, 24×16") })
        #expect(gemm.calls == 1 && gemm.kernel.hasPrefix("gemm"))
        // The CPU GEMM names its plan (24×40 · 40×16, both row-major, in the direct form since C
        // has more rows than columns: B along N, A along K); other kernels say nothing.
        if ctx.variants.gemm == .cpu { #expect(gemm.variant == "N4·A4", "\(gemm.variant)") }
        #expect(report.rows.filter { !$0.kernel.hasPrefix("gemm") }.allSatisfy { $0.variant.isEmpty })
        #expect(abs((gemm.gflops ?? 0) * gemm.ms * 1e6 - 2 * 24 * 16 * 40) < 1, "FLOPs of the GEMM")
        #expect(report.rows.contains { $0.op.hasPrefix("softmax 24×16") && $0.gflops == nil })
        #expect(report.dispatchMs > 0 && report.betweenMs >= 0 && (report.wallMs ?? 0) >= report.dispatchMs)
        #expect(abs(report.rows.reduce(0) { $0 + $1.ms } - report.dispatchMs) < 1e-6)
        #expect(report.table().contains("between dispatches"))
        #expect(ctx.stream.profile.isEmpty && !ctx.stream.profiling)
        let data = try JSONEncoder().encode(report)
        #expect(try JSONDecoder().decode(ProfileReport.self, from: data).rows.count == report.rows.count)
        expectNoValidationMessages(ctx)
    }
}
