import Foundation
import VulkanCompute

/// What `vkprobe devices` says about lavapipe's vector width. lavapipe runs a workgroup's
/// invocations in SIMD lanes as wide as `LP_NATIVE_VECTOR_WIDTH` (256 bits by default, 512 on
/// request where the CPU has AVX-512). VulkanProbe leaves it at lavapipe's default: on a 2-core
/// Zen 5 (AVX-512) 512 bits measured no faster for the GEMMs (75.8 against 79 GFLOP/s for
/// ViT-S/16's Linear at K 384; each texel fetch gathers twice the lanes) and up to 2.8× slower
/// for elementwise kernels, transposes and reductions (docs/PERFORMANCE-HISTORY.md).
enum VectorWidthNote {
    /// The line for a device, nil where it is not lavapipe. `cpuFlags`: the CPU's feature flags
    /// (/proc/cpuinfo's), to say whether 512 bits is an option at all.
    static func line(_ caps: DeviceCapabilities, environment: [String: String], cpuFlags: Set<String>) -> String? {
        guard caps.isCPU, caps.name.hasPrefix("llvmpipe") else { return nil }
        let lanes = caps.subgroupSize
        let set = environment["LP_NATIVE_VECTOR_WIDTH"].map { "LP_NATIVE_VECTOR_WIDTH=\($0) set" } ?? "LP_NATIVE_VECTOR_WIDTH unset"
        let avx512 = cpuFlags.contains("avx512f")
            ? (environment["LP_NATIVE_VECTOR_WIDTH"] == nil ? "the CPU has AVX-512; 512 is not set: measured no faster here (docs/PERFORMANCE-HISTORY.md)" : "the CPU has AVX-512")
            : "no AVX-512 on this CPU"
        return "\(lanes * 32) bits (\(lanes) lanes; \(set)); \(avx512)"
    }

    /// This machine's CPU flags (Linux; empty elsewhere).
    static func cpuFlags() -> Set<String> {
        let line = ShaderCacheKey.cpuFlagsLine()
        guard let colon = line.firstIndex(of: ":") else { return [] }
        return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }
}
