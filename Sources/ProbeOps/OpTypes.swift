/// The vocabulary shared by the kernels, the autodiff graph and the Double reference: element
/// types, activations, binary and reduction operators, and the errors ops throw. Nothing here
/// knows about devices. Codes that GLSL also uses are checked against the shaders by a test
/// (`ShaderInterfaceTests`): the generated `ShaderConstants` carry the GLSL side.

/// Element types a tensor can be stored in.
public enum DType: String, Sendable, Codable {
    /// bf16: bfloat16, the high half of an f32 (8 exponent bits, 7 fraction bits); only GEMM
    /// inputs and copies take it (`--head-precision bf16`).
    case f32, f16, bf16, i32
    public var size: Int { self == .f16 || self == .bf16 ? 2 : 4 }
    /// Floating-point storage every op of the kernel set reads and writes (f32) or stores its
    /// results in (f16); bf16 and i32 tensors go to the ops that say they take them.
    public var isF32OrF16: Bool { self == .f32 || self == .f16 }
}

/// Activation applied in a GEMM epilogue or elementwise (`ACT_*` in Shaders/activations.glsl).
public enum Activation: UInt32, Sendable, CaseIterable, Codable {
    case none = 0, gelu, quickGELU, tanhGELU, relu, sigmoid, tanh, softplus, silu
}

/// Binary elementwise operations (`OP_*` in Shaders/binary.comp).
public enum BinaryOp: UInt32, Sendable, CaseIterable { case add = 0, subtract, multiply, divide }

/// Reductions over one axis (`REDUCE_*` in Shaders/reduce_axis.comp; `mean` is `sum` scaled).
public enum ReduceOp: Sendable, CaseIterable {
    case sum, mean, max, sumOfSquares
    /// The kernel's code for this reduction.
    public var kernelCode: UInt32 {
        switch self { case .sum, .mean: return 0; case .max: return 1; case .sumOfSquares: return 2 }
    }
}

/// Optimiser kinds of the update kernel (`OPT_*` in Shaders/optimizer.comp).
public enum OptimizerKernelKind: UInt32, Sendable, CaseIterable { case sgd = 0, lars, adamw }

/// Errors from ops: always name the op and the shapes involved.
public enum OpError: Error, CustomStringConvertible {
    case shape(String, String)
    case dtype(String, String)
    case device(String, String)
    case unsupported(String, String)

    public var description: String {
        switch self {
        case let .shape(op, msg): return "\(op): shape mismatch: \(msg)"
        case let .dtype(op, msg): return "\(op): dtype mismatch: \(msg)"
        case let .device(op, msg): return "\(op): device mismatch: \(msg)"
        case let .unsupported(op, msg): return "\(op): \(msg)"
        }
    }
}

/// Row-major strides of a dense shape.
public func contiguousStrides(_ shape: [Int]) -> [Int] {
    var s = [Int](repeating: 1, count: shape.count)
    var acc = 1
    for i in shape.indices.reversed() { s[i] = acc; acc *= shape[i] }
    return s
}
