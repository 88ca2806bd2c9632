import Foundation
import ProbeShaders
import Testing
@testable import ProbeKernels
@testable import VulkanCompute

let validationAvailable: Bool = {
    guard let lib = try? VulkanLibrary.shared() else { return false }
    return lib.layerNames().contains(VulkanInstance.validationLayerName)
}()

func makeContext(variants: ((inout KernelVariants) -> Void)? = nil) throws -> KernelContext {
    if ProcessInfo.processInfo.environment["VKPROBE_REQUIRE_VALIDATION"] == "1" && !validationAvailable {
        throw VulkanError.invalidArgument("VKPROBE_REQUIRE_VALIDATION=1 but VK_LAYER_KHRONOS_validation is not installed")
    }
    var options = DeviceOptions(validation: validationAvailable)
    options.pipelineCacheDirectory = nil
    let device = try ComputeDevice(options: options, shaders: BundledShaders.shared)
    var v = KernelVariants(for: device.capabilities)
    variants?(&v)
    return try KernelContext(device: device, variants: v)
}

func expectNoValidationMessages(_ ctx: KernelContext, sourceLocation: SourceLocation = #_sourceLocation) {
    let messages = ctx.device.validationLog?.messages ?? []
    #expect(messages.isEmpty, "validation layer reported: \(messages.map(\.description).joined(separator: "\n"))", sourceLocation: sourceLocation)
}

/// Deterministic uniform values in [lo, hi).
func randomValues(_ n: Int, seed: UInt64, lo: Double = -1, hi: Double = 1) -> [Double] {
    var s = seed &* 0x9E3779B97F4A7C15 &+ 0x632BE59BD9B4E019
    return (0..<n).map { _ in
        s ^= s << 13; s ^= s >> 7; s ^= s << 17
        return lo + (hi - lo) * Double(s >> 11) / Double(1 << 53)
    }
}

/// Elements after every output that kernels must leave alone.
let guardElements = 37
let poisonF32: UInt32 = 0x7FC0_0BAD   // a NaN: any unwritten output element fails the comparison
let poisonF16: UInt16 = 0x7E5A

/// An output tensor filled with NaN, followed by a guard region of the same NaN pattern.
func poisoned(_ ctx: KernelContext, _ shape: [Int], dtype: DType = .f32) throws -> Tensor {
    let n = shape.reduce(1, *)
    let buffer = try ctx.device.makeBuffer(bytes: (n + guardElements) * dtype.size)
    if dtype == .f16 {
        let words = [UInt16](repeating: poisonF16, count: n + guardElements)
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
    if t.dtype == .f16 {
        var tail = [UInt16](repeating: 0, count: guardElements)
        try tail.withUnsafeMutableBytes { try ctx.device.download(t.buffer, offset: n * 2, into: $0) }
        #expect(tail.allSatisfy { $0 == poisonF16 }, "guard region after \(t) was overwritten", sourceLocation: sourceLocation)
    } else {
        var tail = [UInt32](repeating: 0, count: guardElements)
        try tail.withUnsafeMutableBytes { try ctx.device.download(t.buffer, offset: n * 4, into: $0) }
        #expect(tail.allSatisfy { $0 == poisonF32 }, "guard region after \(t) was overwritten", sourceLocation: sourceLocation)
    }
}

/// Relative Frobenius error ‖got − want‖ / ‖want‖ (absolute when want is all zeros); NaN anywhere → ∞.
func relativeError(_ got: [Float], _ want: [Double]) -> Double {
    precondition(got.count == want.count, "\(got.count) vs \(want.count)")
    var num = 0.0, den = 0.0
    for (g, w) in zip(got, want) {
        if !g.isFinite && w.isFinite { return .infinity }
        let d = Double(g) - w
        num += d * d; den += w * w
    }
    return den > 0 ? (num / den).squareRoot() : num.squareRoot()
}

func relativeError(_ got: [Double], _ want: [Double]) -> Double { relativeError(got.map { Float($0) }, want) }

/// fp32 results: rounding of O(K) accumulations lands near 1e-6 relative; 1e-5 leaves headroom.
let fp32Tolerance = 1e-5
/// fp16 storage: inputs/outputs rounded to 11-bit mantissas (2^-11 ≈ 4.9e-4 per element).
let fp16Tolerance = 2e-3

func f16Rounded(_ v: [Double]) -> [Double] { v.map { Double(Float(Float16(Float($0)))) } }

/// Central finite differences of a scalar function f(x) = Σ w·g(x) in Double.
func finiteDifference(_ x: [Double], h: Double = 1e-6, _ f: ([Double]) -> Double) -> [Double] {
    var x = x
    return (0..<x.count).map { i in
        let old = x[i]
        x[i] = old + h; let fp = f(x)
        x[i] = old - h; let fm = f(x)
        x[i] = old
        return (fp - fm) / (2 * h)
    }
}

func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).map(*).reduce(0, +) }

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

/// Checks a reference backward against central differences of the reference forward:
/// for L(x) = Σ dy ⊙ f(x), dL/dx must equal the backward's dx.
func expectGradientMatchesFiniteDifference(_ x: [Double], dy: [Double], forward: ([Double]) -> [Double], backward: [Double],
                                           _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    let fd = finiteDifference(x) { dot(dy, forward($0)) }
    // Central differences with h = 1e-6 in Double: truncation O(h²) ~ 1e-12, cancellation ~ 1e-10.
    let err = relativeError(backward, fd)
    #expect(err <= 1e-6, "\(what): backward vs finite differences: relative error \(err)", sourceLocation: sourceLocation)
}
