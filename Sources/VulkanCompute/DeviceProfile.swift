import Foundation

/// A named GPU's reported limits and features, laid over the device that runs the kernels
/// (`VKPROBE_DEVICE_PROFILE=FILE`, a JSON file like those in `Profiles/`): every limit the planner,
/// the binding splits and the dispatch checks read is lowered to the profile's (alignments
/// raised), every feature kept only where both have it, and the device class taken from the
/// profile — so kernel selection, splitting, refusals and their messages are those that GPU would
/// get, run and checked on lavapipe. What cannot be lowered stays the executing device's: the
/// subgroup size (code runs in the lanes it gets; lavapipe's 4/8/16 and SwiftShader's 4 are tested
/// as themselves), memory heaps and types (the staging path is taken for a discrete profile).
public struct DeviceProfile: Codable, Sendable, Equatable {
    public var name: String
    /// Where the values come from (a driver's source or a capability report).
    public var source: String
    public var deviceType: String
    /// The GPU's subgroup sizes, for the record and `vkprobe devices` (see above).
    public var subgroupSize: Int
    public var minSubgroupSize: Int
    public var maxSubgroupSize: Int
    public var maxComputeSharedMemorySize: Int
    public var maxComputeWorkGroupInvocations: Int
    public var maxComputeWorkGroupSize: [Int]
    public var maxComputeWorkGroupCount: [Int]
    public var maxStorageBufferRange: Int
    public var maxTexelBufferElements: Int
    public var maxPushConstantsSize: Int
    public var minStorageBufferOffsetAlignment: Int
    public var minTexelBufferOffsetAlignment: Int
    public var maxMemoryAllocationSize: Int
    public var maxPerStageDescriptorStorageBuffers: Int
    public var shaderFloat16: Bool
    public var shaderInt8: Bool
    public var storageBuffer16BitAccess: Bool
    public var storageBuffer8BitAccess: Bool
    public var subgroupArithmetic: Bool
    public var cooperativeMatrix: Bool

    /// Reads a profile, naming the file and the field in any error.
    public static func load(_ path: String) throws -> DeviceProfile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw VulkanError.invalidArgument("device profile \(path) (VKPROBE_DEVICE_PROFILE): cannot read the file")
        }
        do {
            let p = try JSONDecoder().decode(DeviceProfile.self, from: data)
            guard p.maxComputeWorkGroupSize.count == 3, p.maxComputeWorkGroupCount.count == 3,
                  [p.minStorageBufferOffsetAlignment, p.minTexelBufferOffsetAlignment].allSatisfy({ $0 > 0 && $0 & ($0 - 1) == 0 }) else {
                throw VulkanError.invalidArgument("device profile \(path): work-group sizes and counts need 3 values, alignments a power of two")
            }
            return p
        } catch let error as DecodingError {
            throw VulkanError.invalidArgument("device profile \(path) is not a profile: \(Self.describe(error))")
        }
    }

    static func describe(_ e: DecodingError) -> String {
        switch e {
        case let .keyNotFound(key, _): return "missing field \"\(key.stringValue)\""
        case let .typeMismatch(_, c), let .valueNotFound(_, c), let .dataCorrupted(c):
            return (c.codingPath.map(\.stringValue).joined(separator: ".") + " " + c.debugDescription).trimmingCharacters(in: .whitespaces)
        @unknown default: return "\(e)"
        }
    }

    /// `caps` as this profile's GPU would report them, within what `caps` can do.
    public func applied(to caps: DeviceCapabilities) -> DeviceCapabilities {
        var c = caps
        c.name = "\(caps.name) as \(name)"
        c.deviceType = deviceType
        c.maxComputeSharedMemorySize = min(c.maxComputeSharedMemorySize, maxComputeSharedMemorySize)
        c.maxComputeWorkGroupInvocations = min(c.maxComputeWorkGroupInvocations, maxComputeWorkGroupInvocations)
        c.maxComputeWorkGroupSize = zip(c.maxComputeWorkGroupSize, maxComputeWorkGroupSize).map { min($0, $1) }
        c.maxComputeWorkGroupCount = zip(c.maxComputeWorkGroupCount, maxComputeWorkGroupCount).map { min($0, $1) }
        c.maxStorageBufferRange = min(c.maxStorageBufferRange, maxStorageBufferRange)
        c.maxTexelBufferElements = min(c.maxTexelBufferElements, maxTexelBufferElements)
        c.maxPushConstantsSize = min(c.maxPushConstantsSize, maxPushConstantsSize)
        c.minStorageBufferOffsetAlignment = max(c.minStorageBufferOffsetAlignment, minStorageBufferOffsetAlignment)
        c.minTexelBufferOffsetAlignment = max(c.minTexelBufferOffsetAlignment, minTexelBufferOffsetAlignment)
        c.maxMemoryAllocationSize = min(c.maxMemoryAllocationSize, maxMemoryAllocationSize)
        c.maxPerStageDescriptorStorageBuffers = min(c.maxPerStageDescriptorStorageBuffers, maxPerStageDescriptorStorageBuffers)
        c.shaderFloat16 = c.shaderFloat16 && shaderFloat16
        c.shaderInt8 = c.shaderInt8 && shaderInt8
        c.storageBuffer16BitAccess = c.storageBuffer16BitAccess && storageBuffer16BitAccess
        c.storageBuffer8BitAccess = c.storageBuffer8BitAccess && storageBuffer8BitAccess
        c.subgroupArithmetic = c.subgroupArithmetic && subgroupArithmetic
        c.cooperativeMatrix = c.cooperativeMatrix && cooperativeMatrix
        if !c.cooperativeMatrix { c.cooperativeMatrixShapes = [] }
        return c
    }

    /// The profile named by `VKPROBE_DEVICE_PROFILE` (nil when unset or empty).
    public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) throws -> DeviceProfile? {
        guard let path = env["VKPROBE_DEVICE_PROFILE"], !path.isEmpty else { return nil }
        return try load(path)
    }
}
