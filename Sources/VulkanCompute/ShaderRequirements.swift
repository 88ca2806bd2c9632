/// The device features a SPIR-V module declares it needs (its OpCapability instructions), checked
/// before a pipeline is made: a driver handed a module with a capability it lacks may crash (a
/// 16-bit kernel killed SwiftShader with SIGILL) instead of failing, so the refusal is ours and
/// names the feature.
public enum ShaderRequirements {
    /// SPIR-V capability → (feature name as `vkprobe devices` and the Vulkan spec call it, whether
    /// the device has it). Capabilities not listed are core or guarded by an extension check.
    static let features: [UInt32: (String, (DeviceCapabilities) -> Bool)] = [
        9: ("shaderFloat16 (fp16 arithmetic)", { $0.shaderFloat16 }),
        39: ("shaderInt8", { $0.shaderInt8 }),
        4433: ("storageBuffer16BitAccess (16-bit storage)", { $0.storageBuffer16BitAccess }),
        4434: ("uniformAndStorageBuffer16BitAccess (16-bit storage)", { $0.storageBuffer16BitAccess }),
        4448: ("storageBuffer8BitAccess (8-bit storage)", { $0.storageBuffer8BitAccess }),
        63: ("subgroup arithmetic", { $0.subgroupArithmetic }),
        5345: ("vulkanMemoryModel", { $0.vulkanMemoryModel }),
        6022: ("cooperativeMatrix", { $0.cooperativeMatrix }),
    ]

    /// The capabilities declared by `code` (the module's leading OpCapability instructions).
    public static func capabilities(_ code: [UInt32]) -> [UInt32] {
        var found: [UInt32] = []
        var i = 5   // after the header
        while i < code.count {
            let count = Int(code[i] >> 16), opcode = code[i] & 0xffff
            guard count > 0 else { break }
            if opcode == 17, i + 1 < code.count { found.append(code[i + 1]) }   // OpCapability
            else if opcode != 10 && opcode != 11 { break }   // past OpExtension / OpExtInstImport
            i += count
        }
        return found
    }

    /// The features `code` needs that `caps` lacks, by name (empty: it can run).
    public static func missing(_ code: [UInt32], on caps: DeviceCapabilities) -> [String] {
        var names: [String] = []
        for c in capabilities(code) {
            if let (name, has) = features[c], !has(caps), !names.contains(name) { names.append(name) }
        }
        return names
    }
}
