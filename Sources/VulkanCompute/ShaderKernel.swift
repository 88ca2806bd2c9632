/// The typed face of one compute shader, generated from its GLSL at build time (ProbeShaders'
/// `ShaderInterfaces.swift`): which SPIR-V builds exist, the push-constant block, the
/// specialization constants and the number of storage buffers. Dispatching through it makes a
/// Swift/GLSL mismatch a compile error instead of a wrong push-constant layout at run time.
public protocol ShaderKernel {
    associatedtype Push: ShaderPush
    associatedtype Spec: ShaderSpec
    associatedtype Variant: RawRepresentable, CaseIterable, Sendable where Variant.RawValue == String
    static var bindingCount: Int { get }
    /// The access each binding's GLSL declaration allows; dispatches are tracked with it.
    static var bindingAccess: [Access] { get }
    /// The GLSL requires `GL_KHR_cooperative_matrix` (runs only where the device has it).
    static var needsCooperativeMatrix: Bool { get }
    /// Bindings declared as uniform texel buffers (`samplerBuffer`), by index.
    static var texelBindings: [Int] { get }
}

extension ShaderKernel {
    public static var needsCooperativeMatrix: Bool { false }
    public static var texelBindings: [Int] { [] }
}

/// A push-constant block: 4-byte words in GLSL declaration order (std430 scalars).
public protocol ShaderPush {
    static var wordCount: Int { get }
    var words: [UInt32] { get }
}

/// Specialization constants in constant_id order.
public protocol ShaderSpec {
    var values: [UInt32] { get }
}

/// A pipeline created for a typed kernel.
public struct TypedKernel<K: ShaderKernel>: @unchecked Sendable {
    public let kernel: Kernel
}

extension PipelineCache {
    /// The pipeline of `variant` of K with `spec`, created once and cached.
    public func kernel<K: ShaderKernel>(_ type: K.Type, _ variant: K.Variant, _ spec: K.Spec) throws -> TypedKernel<K> {
        TypedKernel(kernel: try kernel(KernelDescriptor(shader: variant.rawValue, bindings: K.bindingCount,
                                                        pushConstantBytes: K.Push.wordCount * 4, specialization: spec.values,
                                                        texelBindings: K.texelBindings)))
    }
}

extension CommandStream {
    /// Records one dispatch of a typed kernel. Hazards are tracked with the access the shader
    /// declares for each binding (a buffer not declared readonly counts as written even where a
    /// specialization skips the stores, as the validation layer counts it).
    public func dispatch<K: ShaderKernel>(_ kernel: TypedKernel<K>, _ bindings: [Binding], push: K.Push, groups: (Int, Int, Int)) throws {
        let declared = bindings.count == K.bindingAccess.count
            ? zip(bindings, K.bindingAccess).map { Binding($0.range, $1, texel: $0.texel) } : bindings
        try dispatch(kernel.kernel, declared, push: push.words, groups: groups)
    }
}
