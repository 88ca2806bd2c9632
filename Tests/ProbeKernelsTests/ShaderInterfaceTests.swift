import Foundation
import ProbeShaders
import ProbeTestSupport
import Testing
@testable import ProbeKernels
@testable import VulkanCompute

/// The seam between Swift and GLSL: every SPIR-V module in the bundle has a generated typed face
/// and is created and dispatched once under the validation layer (which checks push-constant
/// sizes, bindings and specialization against the module), and the codes shared through
/// specialization constants agree on both sides.
@Suite struct ShaderInterfaceTests {
    /// A zero push block of K: counts are 0, so the kernel touches nothing. A module needing a
    /// feature the device lacks (16-bit storage on SwiftShader) must be refused by name instead;
    /// those go to `refused`.
    func dispatchOnce<K: ShaderKernel>(_ type: K.Type, _ device: ComputeDevice, _ stream: CommandStream, refused: inout [String]) throws -> [String] {
        var names: [String] = []
        for variant in K.Variant.allCases {
            let d = KernelDescriptor(shader: variant.rawValue, bindings: K.bindingCount, pushConstantBytes: K.Push.wordCount * 4,
                                     specialization: defaultSpec(device), texelBindings: K.texelBindings(variant))
            let missing = ShaderRequirements.missing(try BundledShaders.shared.spirv(named: variant.rawValue), on: device.capabilities)
            if let feature = missing.first {
                #expect(throws: VulkanError.self, "\(variant.rawValue) needs \(feature)") { try device.pipelines.kernel(d) }
                do { _ = try device.pipelines.kernel(d) } catch { #expect("\(error)".contains(feature) && "\(error)".contains(variant.rawValue)) }
                refused.append(variant.rawValue)
                continue
            }
            let kernel = try device.pipelines.kernel(d)
            let bindings = try (0..<K.bindingCount).map { i in
                // Texel views in the format the generated face declares for this build.
                K.texelBindings(variant).contains(i) ? Binding(try device.makeBuffer(bytes: 256).whole, .read,
                                                      texel: try #require(K.texelFormat(variant, binding: i, specValues: defaultSpec(device)), "\(variant.rawValue) binding \(i) has no format"))
                    : Binding(try device.makeBuffer(bytes: 256).whole, .readWrite)
            }
            try stream.dispatch(kernel, bindings, push: [UInt32](repeating: 0, count: K.Push.wordCount), groups: (1, 1, 1))
            names.append(variant.rawValue)
        }
        return names
    }

    /// A workgroup of the device's subgroup (which the `_sg` variants need), other constants at
    /// their GLSL defaults (absent from the list).
    func defaultSpec(_ device: ComputeDevice) -> [UInt32] { [UInt32(max(device.capabilities.subgroupSize, 1))] }

    @Test func everyModuleInTheBundleHasATypedFaceAndDispatches() throws {
        let device = try makeTestDevice()
        let stream = try CommandStream(device: device)
        var dispatched: [String] = [], unrunnable: [String] = [], refused: [String] = []
        for k in allShaderKernels {
            // Cooperative-matrix modules need a device with the extension (none of the CPU drivers
            // here): they are typed, built when the pinned compiler is present, validated by
            // spirv-val in `make test`, and left undispatched.
            if k.needsCooperativeMatrix && !device.capabilities.cooperativeMatrix {
                unrunnable += BundledShaders.shared.names.filter { CooperativeMatrixGEMM.modules.contains($0) }
                continue
            }
            dispatched += try dispatchOnce(k, device, stream, refused: &refused)
        }
        try stream.finish()
        let bundle = Set(BundledShaders.shared.names)
        #expect(Set(dispatched + unrunnable + refused) == bundle, "modules without a typed kernel: \(bundle.subtracting(dispatched + unrunnable + refused))")
        #expect(dispatched.count + unrunnable.count + refused.count == bundle.count)
        // Only what the device lacks is refused: lavapipe (16-bit storage, fp16, subgroups) runs all.
        if device.capabilities.storageBuffer16BitAccess && device.capabilities.shaderFloat16 { #expect(refused.isEmpty, "refused: \(refused)") }
        else { #expect(refused.contains("copy_f32_f16") && !refused.contains("copy"), "refused: \(refused)") }
        expectNoValidationMessages(device)
    }

    @Test func sharedCodesAgree() {
        let activations: [(Activation, UInt32)] = [(.none, ShaderConstants.ACT_NONE), (.gelu, ShaderConstants.ACT_GELU),
            (.quickGELU, ShaderConstants.ACT_QUICK_GELU), (.tanhGELU, ShaderConstants.ACT_TANH_GELU), (.relu, ShaderConstants.ACT_RELU),
            (.sigmoid, ShaderConstants.ACT_SIGMOID), (.tanh, ShaderConstants.ACT_TANH), (.softplus, ShaderConstants.ACT_SOFTPLUS), (.silu, ShaderConstants.ACT_SILU)]
        #expect(activations.count == Activation.allCases.count)
        for (a, code) in activations { #expect(a.rawValue == code, "Activation.\(a) is \(a.rawValue), GLSL says \(code)") }
        let binary: [(BinaryOp, UInt32)] = [(.add, ShaderConstants.OP_ADD), (.subtract, ShaderConstants.OP_SUBTRACT),
                                            (.multiply, ShaderConstants.OP_MULTIPLY), (.divide, ShaderConstants.OP_DIVIDE)]
        #expect(binary.count == BinaryOp.allCases.count)
        for (b, code) in binary { #expect(b.rawValue == code, "BinaryOp.\(b)") }
        let reduce: [(ReduceOp, UInt32)] = [(.sum, ShaderConstants.REDUCE_SUM), (.mean, ShaderConstants.REDUCE_SUM),
                                            (.max, ShaderConstants.REDUCE_MAX), (.sumOfSquares, ShaderConstants.REDUCE_SUM_OF_SQUARES)]
        #expect(reduce.count == ReduceOp.allCases.count)
        for (r, code) in reduce { #expect(r.kernelCode == code, "ReduceOp.\(r)") }
        let optimizers: [(OptimizerKernelKind, UInt32)] = [(.sgd, ShaderConstants.OPT_SGD), (.lars, ShaderConstants.OPT_LARS), (.adamw, ShaderConstants.OPT_ADAMW)]
        #expect(optimizers.count == OptimizerKernelKind.allCases.count)
        for (o, code) in optimizers { #expect(o.rawValue == code, "OptimizerKernelKind.\(o)") }
    }
}
