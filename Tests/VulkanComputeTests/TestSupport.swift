import Foundation
import ProbeShaders
import ProbeTestSupport
import Testing
@testable import VulkanCompute

/// The unary kernel (`y = act(alpha · x + beta)`) through its generated typed face.
func unaryKernel(_ device: ComputeDevice, op: UInt32 = 0, localSize: UInt32 = 64) throws -> Kernel {
    try device.pipelines.kernel(UnaryKernel.self, .base, .init(localSizeX: localSize, OP: op)).kernel
}

func affinePush(n: Int, alpha: Float, beta: Float) -> [UInt32] {
    UnaryKernel.Push(n: n, alpha: alpha, beta: beta, offX: 0, offY: 0).words
}

