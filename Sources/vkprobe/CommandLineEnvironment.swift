import Foundation
import ProbeKernels
import ProbeTraining
import VulkanCompute

/// The environment switches the command line reads, once, at start; everything below it gets
/// them as values (DESIGN: no environment read below the command line but the device, library,
/// cache, kernel-selection, Open MPI and Hugging Face ones). The README lists each.
enum CommandLineEnvironment {
    static let values = ProcessInfo.processInfo.environment
    /// The benchmarks' kernel knobs (VKPROBE_GEMM_*, VKPROBE_TEXEL4, VKPROBE_CPU_GEMM, …).
    static let tuning = KernelTuning(environment: values)

    /// The device switches (VKPROBE_MEMORY_BUDGET, VKPROBE_FORCE_STAGING, VKPROBE_MAX_BINDING) on `options`.
    static func device(_ options: DeviceOptions) -> DeviceOptions { options.applying(environment: values) }

    /// Fault injection for the resume tests: VKPROBE_KILL_AT=SITE:HEAD:EPOCH, only in the rank
    /// VKPROBE_KILL_RANK of an mpirun job when it is set.
    static func armKillPoint() throws {
        guard let spec = values["VKPROBE_KILL_AT"] else { return }
        if let rank = values["VKPROBE_KILL_RANK"], values["OMPI_COMM_WORLD_RANK"] != rank { return }
        try KillPlan(spec).arm()
    }
}

extension KernelContext {
    /// A context with the command line's kernel knobs.
    static func commandLine(_ device: ComputeDevice) throws -> KernelContext {
        try KernelContext(device: device, tuning: CommandLineEnvironment.tuning)
    }
}
