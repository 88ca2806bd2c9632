import ArgumentParser
import Foundation
import Logging
import ProbeTraining
import VulkanCompute

@main
struct VKProbe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vkprobe",
        abstract: "Probing heads on frozen vision transformers, computed with Vulkan.",
        discussion: "Every flag may also be spelt with underscores, as upstream's scripts do (--batch_size for --batch-size).",
        version: "vkprobe \(BuildStamp.version) (commit \(BuildStamp.commit))",
        subcommands: [Devices.self, HeadsCommand.self, ExtractCommand.self, TrainCommand.self, LinprobeCommand.self, KNNCommand.self, MapsCommand.self, ReportCommand.self, SynthCommand.self, CheckTransformsCommand.self, Demo.self, Smoke.self])

    /// The console handler first: every library's logger is made after it.
    static func main() {
        ConsoleLog.bootstrap()
        main(FlagSpelling.normalized(Array(CommandLine.arguments.dropFirst())))
    }
}

/// Options shared by every command that opens a device.
struct DeviceFlags: ParsableArguments {
    @Option(name: .long, help: "Device index or name substring (default: $VKPROBE_DEVICE, else discrete > integrated > CPU).")
    var device: String?

    @Flag(name: .long, help: "Enable the Khronos validation layer (same as VKPROBE_VALIDATION=1).")
    var validation = false

    var options: DeviceOptions {
        var o = CommandLineEnvironment.device(DeviceOptions(selector: device, validation: validation ? true : nil))
        o.instance.echoValidation = true
        return o
    }

    /// The device of one process of a group: without --device or VKPROBE_DEVICE, rank r on a
    /// machine takes device r mod (devices there), GPUs before CPU devices.
    func options(for group: ProcessGroup) throws -> DeviceOptions {
        var o = options
        guard group.size > 1, o.selector == nil, ProcessInfo.processInfo.environment["VKPROBE_DEVICE"] == nil else { return o }
        let instance = try VulkanInstance(options: o.instance)
        let gpus = instance.devices.indices.filter { !instance.devices[$0].isCPU }
        let candidates = gpus.isEmpty ? Array(instance.devices.indices) : gpus
        if !candidates.isEmpty { o.selector = String(candidates[group.localRank % candidates.count]) }
        return o
    }
}

/// Runs `body`, turning thrown errors into one clear line on stderr and exit status 1.
func reportingErrors(_ body: () throws -> Void) throws {
    do { try CommandLineEnvironment.armKillPoint(); try body() } catch let e as ExitCode { throw e } catch let e as CleanExit { throw e } catch {
        FileHandle.standardError.write(Data("error: \(ErrorMessages.text(error))\n".utf8))
        throw ExitCode(1)
    }
}
