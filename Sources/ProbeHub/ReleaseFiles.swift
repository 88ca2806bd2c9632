import Foundation
import Logging

/// Single files a project publishes on its release page (Franca's checkpoints on GitHub), fetched
/// once into VulkanProbe's cache (`$XDG_CACHE_HOME/vkprobe/releases`, else `~/.cache/vkprobe/
/// releases`), resumably (a `.part` file grows until it is complete). `VKPROBE_RELEASE_MIRROR`
/// replaces the URL's scheme and host (a mirror, or the tests' local server).
public enum ReleaseFiles {
    public static func cacheDirectory(_ environment: [String: String]) -> URL {
        let base = environment["XDG_CACHE_HOME"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache")
        return base.appendingPathComponent("vkprobe/releases")
    }

    /// Where `url`'s file lives in the cache (whether or not it is there yet).
    public static func cached(_ url: String, environment: [String: String]) -> URL {
        let host = URL(string: url)?.host ?? "files"
        return cacheDirectory(environment).appendingPathComponent(host).appendingPathComponent(URL(string: url)?.lastPathComponent ?? "file")
    }

    /// The cached file for `url`, downloaded first when it is not there.
    public static func fetch(_ url: String, environment: [String: String]) throws -> URL {
        let target = cached(url, environment: environment)
        if FileManager.default.fileExists(atPath: target.path) {
            hubLog.debug("\(url): cached at \(target.path)")
            return target
        }
        try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
        var source = url
        if let mirror = environment["VKPROBE_RELEASE_MIRROR"], !mirror.isEmpty, let scheme = url.range(of: "://"),
           let pathStart = url[scheme.upperBound...].firstIndex(of: "/") {
            source = mirror.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + String(url[pathStart...])
        }
        #if canImport(FoundationNetworking) && !VKPROBE_NO_NETWORK || os(macOS)
        let part = target.appendingPathExtension("part")
        var last = Date.distantPast
        try HTTP.download(source, to: part, headers: [:], expectedSize: nil) { done, total in
            guard Date().timeIntervalSince(last) > 2 else { return }
            last = Date()
            hubLog.notice("downloading \(target.lastPathComponent): \(HubDownloader.bytes(done))\(total.map { " of \(HubDownloader.bytes($0))" } ?? "")")
        }
        try FileManager.default.moveItem(at: part, to: target)
        hubLog.notice("downloaded \(source) into \(target.path)")
        return target
        #else
        throw HubError("this build has no network access: put \(target.lastPathComponent) (from \(url)) at \(target.path) and run again")
        #endif
    }
}
