import Foundation

/// The goldens directory: $PROBE_GOLDENS, else ../shared/goldens next to the package root.
public let goldensDirectory: URL = {
    if let env = ProcessInfo.processInfo.environment["PROBE_GOLDENS"], !env.isEmpty { return URL(fileURLWithPath: env) }
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    return root.deletingLastPathComponent().appendingPathComponent("shared/goldens")
}()

/// The golden kinds, by file-name prefix; each is checked by the test target of the module it tests.
public enum GoldenKind: Equatable, Sendable {
    /// `<head>_<tag>`: one pooling head (ProbeHeadsTests).
    case head(String)
    /// `train_<head>_<tag>`: a head trained with the upstream protocol (ProbeTrainingTests).
    case training
    /// `vit_<family>_<tag>`: a timm ViT (the backbone's tests).
    case vit
    /// `transform_<tag>`: decoded JPEGs and torchvision's eval transform (the image pipeline's tests).
    case transform

    public init(fileName: String) {
        let stem = fileName.replacingOccurrences(of: ".safetensors", with: "")
        if stem.hasPrefix("train_") { self = .training }
        else if stem.hasPrefix("vit_") { self = .vit }
        else if stem.hasPrefix("transform_") { self = .transform }
        else { self = .head(String(stem[..<(stem.lastIndex(of: "_") ?? stem.endIndex)])) }
    }
}

/// Every `*.safetensors` in the goldens directory, sorted.
public func goldenFiles() -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: goldensDirectory.path)) ?? []).filter { $0.hasSuffix(".safetensors") }.sorted()
}

/// The golden files of one kind.
public func goldenFiles(_ matching: (GoldenKind) -> Bool) -> [String] {
    goldenFiles().filter { matching(GoldenKind(fileName: $0)) }
}
