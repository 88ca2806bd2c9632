import ArgumentParser
import Foundation
import VulkanCompute

struct Devices: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List Vulkan devices, their capabilities, and which one is chosen.")

    @Flag(name: .long, help: "Print JSON: {\"devices\": [...], \"chosen\": <index>}.")
    var json = false

    @OptionGroup var flags: DeviceFlags
    @OptionGroup var logging: LoggingOptions

    func run() throws {
        try reportingErrors {
            let instance = try VulkanInstance(options: flags.options.instance)
            guard !instance.devices.isEmpty else {
                throw VulkanError.noDevice("the Vulkan loader reports no physical devices")
            }
            let chosen = try instance.chooseDevice(flags.options.selector)
            if json {
                struct Listing: Encodable { let devices: [DeviceCapabilities]; let chosen: Int }
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                let data = try encoder.encode(Listing(devices: instance.devices, chosen: chosen))
                print(String(decoding: data, as: UTF8.self))
            } else {
                for caps in instance.devices { print(describe(caps, chosen: caps.index == chosen)) }
            }
        }
    }

    func describe(_ c: DeviceCapabilities, chosen: Bool) -> String {
        func yes(_ b: Bool) -> String { b ? "yes" : "no" }
        var lines = ["\(chosen ? "*" : " ") [\(c.index)] \(c.name)\(chosen ? "   (chosen)" : "")\(c.supported ? "" : "   (unsupported: needs Vulkan 1.2 + compute)")"]
        func add(_ k: String, _ v: String) { lines.append("      " + k.padding(toLength: 26, withPad: " ", startingAt: 0) + v) }
        add("type", "\(c.deviceType), vendor \(c.vendor) (0x\(String(c.vendorID, radix: 16))), device 0x\(String(c.deviceID, radix: 16))")
        add("driver", "\(c.driverName) \(c.driverVersion) — \(c.driverInfo)")
        add("Vulkan API", c.apiVersion)
        add("subgroup size", c.minSubgroupSize == c.maxSubgroupSize ? "\(c.subgroupSize)" : "\(c.subgroupSize) (range \(c.minSubgroupSize)–\(c.maxSubgroupSize))")
        add("shared memory", formatBytes(c.maxComputeSharedMemorySize))
        add("workgroup", "\(c.maxComputeWorkGroupInvocations) invocations, size ≤ \(c.maxComputeWorkGroupSize.map(String.init).joined(separator: "×")), count ≤ \(c.maxComputeWorkGroupCount.map(String.init).joined(separator: "×"))")
        add("maxStorageBufferRange", formatBytes(c.maxStorageBufferRange))
        add("texel buffers", "\(c.maxTexelBufferElements) elements (maxTexelBufferElements; larger operands read as storage buffers)")
        add("push constants", "\(c.maxPushConstantsSize) B")
        add("storage offset alignment", "\(c.minStorageBufferOffsetAlignment) B")
        add("max allocation", formatBytes(c.maxMemoryAllocationSize))
        add("fp16 / int8 arithmetic", "\(yes(c.shaderFloat16)) / \(yes(c.shaderInt8))")
        add("16-bit / 8-bit storage", "\(yes(c.storageBuffer16BitAccess)) / \(yes(c.storageBuffer8BitAccess))")
        let shapes = c.cooperativeMatrixShapes.map { "\($0.m)×\($0.n)×\($0.k) \($0.a)·\($0.b)→\($0.result)" }
        add("cooperative matrix", c.cooperativeMatrix ? "yes: " + shapes.joined(separator: ", ") : "no")
        if let note = VectorWidthNote.line(c, environment: ProcessInfo.processInfo.environment, cpuFlags: VectorWidthNote.cpuFlags()) {
            add("vector width", note)
        }
        add("shader caches", "keyed \(ShaderCacheKey.current) (\(ShaderCacheKey.settings.joined(separator: ", ")), CPU flags)"
            + (ShaderCacheKey.guardMesaCache.map { "; Mesa's in \($0)" } ?? "; Mesa's disabled"))
        add("timestamps", c.timestamps ? "yes, period \(c.timestampPeriodNs) ns, \(c.timestampValidBits) bits" : "no")
        for h in c.memoryHeaps {
            let types = c.memoryTypes.filter { $0.heap == h.index }.map { "[\($0.index)] " + $0.flags.joined(separator: "+") }
            add("memory heap \(h.index)", "\(formatBytes(h.size))\(h.deviceLocal ? " device-local" : ""); types \(types.joined(separator: ", "))")
        }
        return lines.joined(separator: "\n")
    }
}
