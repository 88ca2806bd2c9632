import Foundation
import ProbeShaders
import VulkanCompute

/// Whether the cooperative-matrix GEMM serves f16-input GEMMs on a device, and why (not).
public struct CoopmatChoice: Sendable, Equatable, CustomStringConvertible {
    public var enabled: Bool
    public var reason: String
    /// Say it as a warning (the user asked for it and cannot have it, or it failed its check).
    public var warn: Bool
    public var description: String { (enabled ? "cooperative-matrix GEMM: on" : "cooperative-matrix GEMM: off") + " (\(reason))" }
}

/// The `VK_KHR_cooperative_matrix` GEMM (`Shaders/coopmat/gemm_coopmat.comp`): f16 A and B, f32
/// accumulation, 16×16×16 matrices on the subgroup, four subgroups per 64×64 tile.
public enum CooperativeMatrixGEMM {
    public static let modules: Set<String> = Set(GemmCoopmatKernel.Variant.allCases.map(\.rawValue))
    static let subgroupsPerWorkgroup = 4

    /// The selection. `setting` false (`VKPROBE_COOPMAT=0`) forbids it; true (`=1`) asks for it
    /// (a warning says why not where it cannot be had); nil, it is used wherever the device and
    /// the build allow.
    public static func choose(_ caps: DeviceCapabilities, available: Set<String>, setting: Bool?) -> CoopmatChoice {
        if setting == false { return CoopmatChoice(enabled: false, reason: "VKPROBE_COOPMAT=0", warn: false) }
        let asked = setting == true
        func no(_ why: String) -> CoopmatChoice { CoopmatChoice(enabled: false, reason: why, warn: asked) }
        guard modules.isSubset(of: available) else {
            return no("this build has no cooperative-matrix kernels: install the pinned compiler with `make shader-tools` and rebuild")
        }
        guard caps.cooperativeMatrix else { return no("\(caps.name) does not offer VK_KHR_cooperative_matrix") }
        let shape = caps.cooperativeMatrixShapes.contains {
            $0.m == 16 && $0.n == 16 && $0.k == 16 && $0.a == "f16" && $0.b == "f16" && $0.c == "f32" && $0.result == "f32" && $0.scope == "subgroup"
        }
        guard shape else { return no("\(caps.name) has no 16×16×16 f16 × f16 → f32 subgroup shape (it offers \(caps.cooperativeMatrixShapes.map { "\($0.m)×\($0.n)×\($0.k) \($0.a)·\($0.b)→\($0.result)" }.joined(separator: ", ")))") }
        guard caps.vulkanMemoryModel, caps.shaderFloat16, caps.storageBuffer16BitAccess else {
            return no("\(caps.name) lacks vulkanMemoryModel, shaderFloat16 or 16-bit storage")
        }
        guard caps.minSubgroupSize == caps.maxSubgroupSize, caps.subgroupSize >= 8,
              subgroupsPerWorkgroup * caps.subgroupSize <= caps.maxComputeWorkGroupInvocations else {
            return no("\(caps.name) has a variable subgroup size (\(caps.minSubgroupSize)–\(caps.maxSubgroupSize)); the kernel assumes a fixed one")
        }
        return CoopmatChoice(enabled: true, reason: "\(caps.name), 16×16×16 f16 → f32, \(subgroupsPerWorkgroup) × \(caps.subgroupSize) invocations", warn: false)
    }

    /// The first-use check: `candidate` and `reference` compute the same GEMM (f16 inputs with
    /// edges on every side of a tile); they must agree to f32 accumulation-order rounding: within
    /// 2⁻¹⁸·K·max|aᵢₖbₖⱼ| per element. A mismatch turns the candidate off with a warning naming the
    /// device and driver.
    public static func verify(_ ctx: KernelContext, candidate: (Tensor, Tensor, Tensor) throws -> Void,
                              reference: (Tensor, Tensor, Tensor) throws -> Void) throws -> CoopmatChoice {
        let (M, N, K) = (70, 45, 100)
        var state: UInt64 = 12345
        func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int((state >> 33) % 2001) - 1000) / 1000
        }
        let av = (0..<(M * K)).map { _ in next() }, bv = (0..<(K * N)).map { _ in next() }
        let a = try ctx.tensorF16(av, [M, K]), b = try ctx.tensorF16(bv, [K, N])
        let c1 = try ctx.empty([M, N]), c2 = try ctx.empty([M, N])
        try candidate(a, b, c1)
        try reference(a, b, c2)
        let x = try ctx.read(c1), y = try ctx.read(c2)
        let bound = Double(K) * 0x1p-18
        let worst = zip(x, y).map { Double(abs($0 - $1)) }.max() ?? .infinity
        let caps = ctx.device.capabilities
        if !(worst <= bound) || x.contains(where: { !$0.isFinite }) {
            return CoopmatChoice(enabled: false, reason: "on \(caps.name) (driver \(caps.driverName) \(caps.driverInfo)) it disagrees with the tiled kernel by \(worst) (bound \(bound)); using the tiled kernel", warn: true)
        }
        return CoopmatChoice(enabled: true, reason: "checked against the tiled kernel on \(caps.name): max difference \(worst)", warn: false)
    }
}
