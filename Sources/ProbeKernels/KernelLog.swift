import Logging

/// The kernel layer's log: the variants chosen for a device, operands split to fit a binding, the
/// cooperative-matrix decision (a warning when asked for and refused).
let kernelLog = Logger(label: "vkprobe.kernels")

extension KernelVariants {
    /// The choice in one line, as `--log-level debug` shows it.
    public var summary: String {
        let gemmText = gemm == .tiled ? "tiled GEMM" : "CPU-shaped GEMM (\(cpuGEMM.lanes) lanes, \(cpuGEMM.rows)×\(cpuGEMM.cols) tile\(cpuGEMMAlongK.map { ", along K \($0.rows)×\($0.cols)" } ?? ""), K texels \(gemmKTexels))"
        let rows = rowSubgroup ? "one subgroup of \(rowLocal) lanes per row (subgroup reductions)" : "\(rowLocal)-invocation shared-memory row reductions"
        return "\(selection.rawValue)-class kernels: \(gemmText); \(rows), \(rowsPerWorkgroup) rows per workgroup; elementwise \(elementwiseLocal) invocations × \(elementsPerInvocation) elements; attention \(attentionFused ? "fused" : "as GEMM + softmax + GEMM"); texel twins \(texelTwins ? "on" : "off")"
    }
}
