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
    /// The bindings a build declares as uniform texel buffers (`textureBuffer`), by index: its
    /// texel twin (`-DTEXEL` in variants.txt) reads them so, the storage-buffer build not.
    static func texelBindings(_ variant: Variant) -> [Int]
    /// The format a texel binding reads in `variant` with specialization constants `specValues`
    /// (constant_id order), as the GLSL declares it (`#pragma vkprobe_texel`); nil elsewhere.
    static func texelFormat(_ variant: Variant, binding: Int, specValues: [UInt32]) -> TexelFormat?
}

extension ShaderKernel {
    public static var needsCooperativeMatrix: Bool { false }
    public static func texelBindings(_ variant: Variant) -> [Int] { [] }
    public static func texelFormat(_ variant: Variant, binding: Int, specValues: [UInt32]) -> TexelFormat? { nil }
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
    /// What each texel binding of this build and specialization reads (the shader face's).
    public let texelFormats: [Int: TexelFormat]
}

extension PipelineCache {
    /// The pipeline of `variant` of K with `spec`, created once and cached.
    public func kernel<K: ShaderKernel>(_ type: K.Type, _ variant: K.Variant, _ spec: K.Spec) throws -> TypedKernel<K> {
        TypedKernel(kernel: try kernel(KernelDescriptor(shader: variant.rawValue, bindings: K.bindingCount,
                                                        pushConstantBytes: K.Push.wordCount * 4, specialization: spec.values,
                                                        texelBindings: K.texelBindings(variant))),
                    texelFormats: Dictionary(uniqueKeysWithValues: K.texelBindings(variant).compactMap { b in
                        K.texelFormat(variant, binding: b, specValues: spec.values).map { (b, $0) } }))
    }
}

extension CommandStream {
    /// Records one dispatch of a typed kernel. Hazards are tracked with the access the shader
    /// declares for each binding (a buffer not declared readonly counts as written even where a
    /// specialization skips the stores, as the validation layer counts it).
    public func dispatch<K: ShaderKernel>(_ kernel: TypedKernel<K>, _ bindings: [Binding], push: K.Push, groups: (Int, Int, Int)) throws {
        // A texel view must be what the shader reads (its face says, per build and specialization).
        for (i, b) in bindings.enumerated() where b.texel != kernel.texelFormats[i] {
            throw VulkanError.invalidArgument("\(kernel.kernel.descriptor.shader) binding \(i): bound as \(b.texel.map { "\($0)" } ?? "a storage buffer"), the shader reads \(kernel.texelFormats[i].map { "\($0)" } ?? "a storage buffer")")
        }
        let declared = bindings.count == K.bindingAccess.count
            ? zip(bindings, K.bindingAccess).map { Binding($0.range, $1, texel: $0.texel) } : bindings
        try dispatch(kernel.kernel, declared, push: push.words, groups: groups)
    }
}
