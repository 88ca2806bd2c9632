import Foundation
import ProbeShaders
import ProbeTestSupport
import Testing
@testable import ProbeKernels
@testable import VulkanCompute

/// The cooperative-matrix GEMM's selection and first-use check, on lavapipe with a faked
/// capability (no CPU driver here runs cooperative matrices).
@Suite struct CooperativeMatrixTests {
    func capable(_ caps: DeviceCapabilities) -> DeviceCapabilities {
        var c = caps
        c.name = "Fake GPU"
        c.cooperativeMatrix = true
        c.cooperativeMatrixShapes = [.init(m: 16, n: 16, k: 16, a: "f16", b: "f16", c: "f32", result: "f32", scope: "subgroup")]
        c.vulkanMemoryModel = true; c.shaderFloat16 = true; c.storageBuffer16BitAccess = true
        c.subgroupSize = 32; c.minSubgroupSize = 32; c.maxSubgroupSize = 32
        c.maxComputeWorkGroupInvocations = 1024
        return c
    }

    @Test func selectionFollowsTheDeviceTheBuildAndTheSwitch() throws {
        let real = try makeTestDevice().capabilities
        let all = CooperativeMatrixGEMM.modules
        let fake = capable(real)
        #expect(CooperativeMatrixGEMM.choose(fake, available: all, setting: nil).enabled)
        // Forbidden by the switch, silently.
        let off = CooperativeMatrixGEMM.choose(fake, available: all, setting: false)
        #expect(!off.enabled && !off.warn)
        // The real lavapipe: off; a warning only when asked for.
        let plain = CooperativeMatrixGEMM.choose(real, available: all, setting: nil)
        #expect(!plain.enabled && !plain.warn && plain.reason.contains("VK_KHR_cooperative_matrix"))
        let asked = CooperativeMatrixGEMM.choose(real, available: all, setting: true)
        #expect(!asked.enabled && asked.warn)
        // A build without the kernels says how to get them.
        let unbuilt = CooperativeMatrixGEMM.choose(fake, available: [], setting: nil)
        #expect(!unbuilt.enabled && unbuilt.reason.contains("make shader-tools"))
        // No matching shape, or a variable subgroup size: off, naming why.
        var noShape = fake
        noShape.cooperativeMatrixShapes = [.init(m: 8, n: 8, k: 32, a: "i8", b: "i8", c: "i32", result: "i32", scope: "subgroup")]
        #expect(CooperativeMatrixGEMM.choose(noShape, available: all, setting: nil).reason.contains("16×16×16"))
        var variable = fake
        variable.minSubgroupSize = 8
        #expect(CooperativeMatrixGEMM.choose(variable, available: all, setting: nil).reason.contains("variable subgroup size"))
        var noModel = fake
        noModel.vulkanMemoryModel = false
        #expect(!CooperativeMatrixGEMM.choose(noModel, available: all, setting: nil).enabled)
    }

    /// The first-use check keeps a candidate that agrees with the tiled kernel and turns off (with
    /// a warning naming the device and driver) one that does not.
    @Test(.enabled(if: deviceHas16BitStorage, "f16 GEMMs need 16-bit storage")) func firstUseCheckKeepsAgreeingAndDropsDisagreeing() throws {
        let ctx = try makeContext()
        let tiled: (Tensor, Tensor, Tensor) throws -> Void = { a, b, c in
            try ctx.gemmDispatch(a, b, c, transA: false, transB: false, alpha: 1, beta: 0, bias: nil, activation: .none, scale: nil, residual: false, path: .tiled)
        }
        let cpuKernel: (Tensor, Tensor, Tensor) throws -> Void = { a, b, c in try ctx.gemm(a, b, into: c) }
        let good = try CooperativeMatrixGEMM.verify(ctx, candidate: cpuKernel, reference: tiled)
        #expect(good.enabled && !good.warn, "\(good)")
        let skewed: (Tensor, Tensor, Tensor) throws -> Void = { a, b, c in try ctx.gemm(a, b, into: c, alpha: 1.001) }
        let bad = try CooperativeMatrixGEMM.verify(ctx, candidate: skewed, reference: tiled)
        #expect(!bad.enabled && bad.warn && bad.reason.contains(ctx.device.capabilities.name) && bad.reason.contains("tiled kernel"))
        expectNoValidationMessages(ctx)
    }

    /// With the choice turned off after a failed check, f16 GEMMs take the tiled kernel and are right.
    @Test(.enabled(if: deviceHas16BitStorage, "f16 GEMMs need 16-bit storage")) func aFailedCheckFallsBackToTheTiledKernel() throws {
        let ctx = try makeContext(variants: { $0.gemm = .tiled })
        ctx.overrideCoopmat(CoopmatChoice(enabled: false, reason: "failed its check", warn: true), checked: true)
        let a = try ctx.tensorF16([1, 2, 3, 4, 5, 6], [2, 3]), b = try ctx.tensorF16([1, 0, 0, 1, 1, 1], [3, 2])
        let c = try ctx.empty([2, 2])
        try ctx.gemm(a, b, into: c)
        #expect(try ctx.read(c) == [4, 5, 10, 11])
        expectNoValidationMessages(ctx)
    }

    /// The built SPIR-V (when the pinned compiler was present) declares what the device must enable.
    @Test func builtModulesDeclareTheCapability() throws {
        let built = Set(BundledShaders.shared.names).intersection(CooperativeMatrixGEMM.modules)
        if FileManager.default.isExecutableFile(atPath: ".venv-shaders/bin/glslangValidator") {
            #expect(built == CooperativeMatrixGEMM.modules, "the pinned compiler is installed but the bundle lacks \(CooperativeMatrixGEMM.modules.subtracting(built))")
        }
        for name in built {
            let words = try BundledShaders.shared.spirv(named: name)
            // OpCapability (17) CooperativeMatrixKHR (6022), and VulkanMemoryModel (5345).
            let capabilities = Set(stride(from: 5, to: words.count - 1, by: 1).compactMap { i in words[i] == (2 << 16 | 17) ? words[i + 1] : nil })
            #expect(capabilities.contains(6022) && capabilities.contains(5345), "\(name): capabilities \(capabilities.sorted())")
        }
        #expect(GemmCoopmatKernel.needsCooperativeMatrix && !GemmCpuKernel.needsCooperativeMatrix)
    }
}

/// The knobs parsed at the edge: each switch, values that do not parse ignored, nothing read otherwise.
@Suite struct KernelTuningTests {
    @Test func parsesEachKnob() {
        #expect(KernelTuning(environment: [:]) == KernelTuning())
        let t = KernelTuning(environment: ["VKPROBE_GEMM_STORE4": "0", "VKPROBE_TEXEL4": "0", "VKPROBE_GEMM_TEXEL": "0", "VKPROBE_CPU_GEMM": "8,8,16",
                                           "VKPROBE_ELEMENTS_PER_INVOCATION": "4", "VKPROBE_ROWS_PER_WORKGROUP": "2", "VKPROBE_GEMM_UNROLL": "0",
                                           "VKPROBE_GEMM_BK": "0", "VKPROBE_GEMM_PACK": "0", "VKPROBE_GEMM_SWAP": "1", "VKPROBE_COOPMAT": "0",
                                           "VKPROBE_GEMM_KTEXELS": "3"])
        #expect(t.gemmKTexels == 3)
        #expect(!t.gemmStore4 && !t.texel4 && !t.texel && t.cpuGEMM == [8, 8, 16] && t.elementsPerInvocation == 4 && t.rowsPerWorkgroup == 2)
        #expect(!t.gemmUnrolled && !t.gemmBK && t.gemmPack == 0 && t.gemmSwap == true && t.coopmat == false)
        let bad = KernelTuning(environment: ["VKPROBE_CPU_GEMM": "8,0,16", "VKPROBE_ELEMENTS_PER_INVOCATION": "-1", "VKPROBE_GEMM_SWAP": "yes",
                                             "VKPROBE_GEMM_KTEXELS": "0"])
        #expect(bad == KernelTuning())
    }
}
