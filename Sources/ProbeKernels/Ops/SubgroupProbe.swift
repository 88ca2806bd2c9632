import Foundation
import ProbeOps
import ProbeShaders
import VulkanCompute

/// What the code on the device was built for, per invocation: a subgroup sum of ones and the span
/// of local indices in the subgroup. Both equal the device's reported size when the driver built the code
/// for this run; a CPU driver served code from another vector width's cache shows another size
/// (`ShaderCacheKey`). `vkprobe devices` and the kernel tests at every width check it.
public struct SubgroupProbe: Sendable, Equatable {
    /// The distinct (subgroup sum, index span) pairs seen over the dispatch.
    public var seen: Set<[Int]>
    public var reported: Int
    public var matches: Bool { seen == [[reported, reported]] }
}

extension KernelContext {
    /// Runs the probe over `workgroups` workgroups of 64 invocations: one size for every width, so
    /// that code a cache holds from another width has this run's cache key and would be served.
    public func probeSubgroups(workgroups: Int = 3) throws -> SubgroupProbe {
        let caps = device.capabilities
        guard caps.subgroupArithmetic else { throw OpError.unsupported("probeSubgroups", "\(caps.name) has no subgroup arithmetic") }
        let local = min(max(64, caps.subgroupSize), caps.maxComputeWorkGroupInvocations)
        let n = local * workgroups
        let out = try empty([2 * n], dtype: .i32)
        let k = try kernel(SubgroupProbeKernel.self, .base, .init(localSizeX: UInt32(local)))
        let (b, _) = try bind(out, .write, op: "probeSubgroups")
        try stream.dispatch(k, [b], push: .init(n: n), groups: (workgroups, 1, 1))
        let v = try readInt32(out)
        return SubgroupProbe(seen: Set((0..<n).map { [Int(v[2 * $0]), Int(v[2 * $0 + 1])] }), reported: caps.subgroupSize)
    }
}
