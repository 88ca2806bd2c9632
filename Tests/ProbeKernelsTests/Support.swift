import Foundation
import ProbeShaders
import ProbeTestSupport
import Testing
@testable import ProbeKernels
@testable import VulkanCompute

/// Elements after every output that kernels must leave alone.
let guardElements = 37
let poisonF32: UInt32 = 0x7FC0_0BAD   // a NaN: any unwritten output element fails the comparison
let poisonF16: UInt16 = 0x7E5A
let poisonBF16: UInt16 = 0x7FAD   // a NaN in bfloat16 (exponent 0xFF, fraction 0x2D)
/// The 16-bit poison of a 2-byte dtype.
func poison16(_ dtype: DType) -> UInt16 { dtype == .bf16 ? poisonBF16 : poisonF16 }

/// An output tensor filled with NaN, followed by a guard region of the same NaN pattern.
func poisoned(_ ctx: KernelContext, _ shape: [Int], dtype: DType = .f32) throws -> Tensor {
    let n = shape.reduce(1, *)
    let buffer = try ctx.device.makeBuffer(bytes: (n + guardElements) * dtype.size)
    if dtype.size == 2 {
        let words = [UInt16](repeating: poison16(dtype), count: n + guardElements)
        try words.withUnsafeBytes { try ctx.device.upload($0, to: buffer) }
    } else {
        let words = [UInt32](repeating: poisonF32, count: n + guardElements)
        try words.withUnsafeBytes { try ctx.device.upload($0, to: buffer) }
    }
    return Tensor(buffer: buffer, shape: shape, dtype: dtype)
}

/// Checks the guard region after a poisoned output is untouched.
func expectGuardIntact(_ ctx: KernelContext, _ t: Tensor, sourceLocation: SourceLocation = #_sourceLocation) throws {
    try ctx.finish()
    let n = t.count
    if t.dtype.size == 2 {
        var tail = [UInt16](repeating: 0, count: guardElements)
        try tail.withUnsafeMutableBytes { try ctx.device.download(t.buffer, offset: n * 2, into: $0) }
        #expect(tail.allSatisfy { $0 == poison16(t.dtype) }, "guard region after \(t) was overwritten", sourceLocation: sourceLocation)
    } else {
        var tail = [UInt32](repeating: 0, count: guardElements)
        try tail.withUnsafeMutableBytes { try ctx.device.download(t.buffer, offset: n * 4, into: $0) }
        #expect(tail.allSatisfy { $0 == poisonF32 }, "guard region after \(t) was overwritten", sourceLocation: sourceLocation)
    }
}

func f16Rounded(_ v: [Double]) -> [Double] { v.map { Double(Float(Float16(Float($0)))) } }

/// x (an f32) rounded to bfloat16 by arithmetic, not bits: the nearest multiple of the bf16
/// spacing at x's binade (8 significant bits; subnormals share the spacing 2⁻¹³³), ties to the
/// even multiple; past the largest bf16 it is ±inf, NaN stays NaN.
func bf16Rounded(_ x: Float) -> Float {
    guard x.isFinite, x != 0 else { return x }
    let spacing = Double(sign: .plus, exponent: max(Int(x.exponent), -126) - 7, significand: 1)
    return Float((Double(x) / spacing).rounded(.toNearestOrEven) * spacing)
}
func bf16Rounded(_ v: [Double]) -> [Double] { v.map { Double(bf16Rounded(Float($0))) } }

func upload(_ ctx: KernelContext, _ v: [Double], _ shape: [Int]) throws -> Tensor {
    try ctx.tensor(v.map { Float($0) }, shape)
}

/// Reads a tensor and compares with the reference under the fp32 bound.
func expectClose(_ ctx: KernelContext, _ t: Tensor, _ want: [Double], _ what: @autoclosure () -> String,
                 tolerance: Double = fp32Tolerance, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let got = try ctx.read(t)
    let err = relativeError(got, want)
    #expect(err <= tolerance, "\(what()): relative error \(err)", sourceLocation: sourceLocation)
}

