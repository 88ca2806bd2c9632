import Foundation
import ProbeTestSupport
import Testing
@testable import ProbeKernels
import VulkanCompute

/// The code running is the code built for this run's subgroup size, and row kernels refuse a
/// workgroup their subgroup reductions would cut in parts. `make test` runs this suite at 4, 8 and
/// 16 lavapipe lanes with Mesa's shader cache warm from the other widths.
@Suite struct SubgroupTests {
    /// Every invocation's subgroup sum of ones and span of local indices equal the subgroup size the
    /// device reports. Code served from a cache filled at another lavapipe width shows that width's
    /// size (Mesa 22.3 keyed its cache by neither); `LP_NATIVE_VECTOR_WIDTH`, when set, must also
    /// be what lavapipe reports.
    @Test func codeIsBuiltForThisSubgroupSize() throws {
        let ctx = try makeContext()
        let caps = ctx.device.capabilities
        let probe = try ctx.probeSubgroups()
        #expect(probe.matches, "\(caps.name): the code reports (subgroup sum, index span) \(probe.seen.sorted { $0.lexicographicallyPrecedes($1) }), the device \(caps.subgroupSize)")
        if caps.name.contains("llvmpipe"), let width = ProcessInfo.processInfo.environment["LP_NATIVE_VECTOR_WIDTH"].flatMap({ Int($0) }) {
            #expect(caps.subgroupSize == width / 32, "LP_NATIVE_VECTOR_WIDTH=\(width) but lavapipe reports \(caps.subgroupSize) lanes")
        }
        // The cache folder this process uses is its own key's.
        if let dir = ShaderCacheKey.guardMesaCache {
            #expect(dir.hasSuffix(ShaderCacheKey.current) && ProcessInfo.processInfo.environment["MESA_SHADER_CACHE_DIR"] == dir)
        }
        expectNoValidationMessages(ctx)
    }

    /// A subgroup-reducing row workgroup of two subgroups is refused with both sizes named, not run
    /// (it would sum each half alone, as the kernel tests' former fixed 8 lanes did at 4).
    @Test func rowWorkgroupOfTwoSubgroupsIsRefused() throws {
        let device = try makeTestDevice()
        var v = KernelVariants(for: device.capabilities)
        guard v.fixedSubgroup else { return }
        v.rowSubgroup = true
        v.rowLocal = UInt32(2 * v.subgroupSize)
        #expect(v.rowChoiceProblem?.contains("rowLocal is \(2 * v.subgroupSize) and the device's subgroup size is \(v.subgroupSize)") == true)
        #expect(throws: OpError.self) { try KernelContext(device: device, variants: v) }
        v.rowLocal = UInt32(v.subgroupSize)
        #expect(v.rowChoiceProblem == nil)
        v.rowSubgroup = false
        v.rowLocal = UInt32(device.capabilities.maxComputeWorkGroupInvocations * 2)
        #expect(v.rowChoiceProblem?.contains("maxComputeWorkGroupInvocations of \(device.capabilities.maxComputeWorkGroupInvocations)") == true)
    }

    /// The cache folders of two widths differ, and follow Mesa's own setting when one is given.
    @Test func mesaCacheFolderIsPerKey() {
        let dir = ShaderCacheKey.mesaCacheDirectory(environment: ["HOME": "/h"])
        #expect(dir == "/h/.cache/vkprobe/mesa-\(ShaderCacheKey.current)")
        #expect(ShaderCacheKey.mesaCacheDirectory(environment: ["MESA_SHADER_CACHE_DIR": "/m", "HOME": "/h"]) == "/m/mesa-\(ShaderCacheKey.current)")
        #expect(ShaderCacheKey.mesaCacheDirectory(environment: ["MESA_SHADER_CACHE_DISABLE": "true", "HOME": "/h"]) == nil)
        #expect(ShaderCacheKey.current.hasPrefix("w\(ProcessInfo.processInfo.environment["LP_NATIVE_VECTOR_WIDTH"] ?? "auto")-"))
    }
}
