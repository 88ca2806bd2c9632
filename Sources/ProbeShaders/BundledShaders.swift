import Foundation
import VulkanCompute

/// The SPIR-V kernels compiled from `Shaders/` at build time, loaded from this module's bundle.
public struct BundledShaders: ShaderLibrary {
    public static let shared = BundledShaders()
    public init() {}

    public func spirv(named name: String) throws -> [UInt32] {
        guard let url = Bundle.module.url(forResource: name, withExtension: "spv") else {
            throw VulkanError.shaderMissing(name)
        }
        let data = try Data(contentsOf: url)
        guard data.count % 4 == 0, data.count >= 20 else {
            throw VulkanError.invalidArgument("Shader resource \(url.path) is not SPIR-V (\(data.count) bytes); rebuild")
        }
        // Data is not guaranteed 4-byte aligned: copy into [UInt32].
        return data.withUnsafeBytes { raw in (0..<data.count / 4).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self) } }
    }

    /// Names of every compiled kernel.
    public var names: [String] {
        guard let dir = Bundle.module.resourceURL,
              let files = try? FileManager.default.contentsOfDirectory(atPath: dir.path) else { return [] }
        return files.filter { $0.hasSuffix(".spv") }.map { String($0.dropLast(4)) }.sorted()
    }
}
