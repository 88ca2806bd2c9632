import Foundation
import Logging
#if canImport(FoundationNetworking) && !VKPROBE_NO_NETWORK
import FoundationNetworking
#endif

/// Files from the Hugging Face hub as `huggingface_hub.hf_hub_download` fetches them: a HEAD of
/// `{HF_ENDPOINT}/{repo}/resolve/{revision}/{file}` (redirects not followed) gives the commit
/// (`X-Repo-Commit`), the blob's name (`X-Linked-Etag`, else `ETag`: the SHA-256 for LFS files) and
/// size (`X-Linked-Size`, else `Content-Length`); the body goes to `blobs/<etag>.incomplete`,
/// resumed with a `Range` request after an interruption, checked (size; SHA-256 where the etag is
/// one), then moved into the blob store with its snapshot link and ref (`HubCache`). `HF_TOKEN` is
/// sent for gated repos, `HF_HUB_OFFLINE=1` reads the cache only. Nothing half-written is ever
/// left where the cache looks for files.
public struct HubDownloader {
    public var cache: HubCache
    public var endpoint: String
    public var token: String?
    public var offline: Bool

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        cache = HubCache(environment: environment)
        endpoint = (environment["HF_ENDPOINT"].flatMap { $0.isEmpty ? nil : $0 } ?? "https://huggingface.co").trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        token = environment["HF_TOKEN"].flatMap { $0.isEmpty ? nil : $0 } ?? environment["HUGGING_FACE_HUB_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        offline = ["1", "true", "yes", "on"].contains((environment["HF_HUB_OFFLINE"] ?? "").lowercased())
    }

    /// The local path of `file` of `repo` at `revision`, downloading it when the cache lacks it.
    public func file(repo: String, file: String, revision: String = "main") throws -> URL {
        if offline {
            if let cached = cache.cachedFile(repo: repo, file: file, revision: revision) {
                hubLog.debug("HF_HUB_OFFLINE: \(repo)/\(file) from the cache at \(cached.path)")
                return cached
            }
            throw HubError("HF_HUB_OFFLINE is set and \(repo)/\(file) (\(revision)) is not in the cache at \(cache.repoFolder(repo).path): run once online, or pass the file with --weights")
        }
        #if canImport(FoundationNetworking) && !VKPROBE_NO_NETWORK || os(macOS)
        let url = "\(endpoint)/\(repo)/resolve/\(revision)/\(file)"
        let head: HTTP.Response
        do {
            head = try HTTP.request(url, method: "HEAD", headers: authorization(), followRedirects: false)
        } catch {
            // As huggingface_hub: unreachable, but cached → use the cache, saying so.
            if let cached = cache.cachedFile(repo: repo, file: file, revision: revision) {
                hubLog.notice("note: \(endpoint) unreachable (\(error)); using the cached \(cached.path)")
                return cached
            }
            throw HubError("cannot reach \(endpoint) for \(repo)/\(file): \(error) (HF_ENDPOINT sets the server; HF_HUB_OFFLINE=1 reads the cache only)")
        }
        switch head.status {
        case 200..<400: break
        case 401, 403: throw HubError("\(url): \(head.status) — \(repo) is gated or private: accept its terms on the hub and set HF_TOKEN")
        case 404: throw HubError("\(url): not found (404) — no file \(file) in \(repo) at \(revision); check the model name and its tag")
        default: throw HubError("\(url): the hub answered \(head.status)")
        }
        guard let commit = head.header("X-Repo-Commit") else { throw HubError("\(url): the answer has no X-Repo-Commit (is HF_ENDPOINT a hub?)") }
        guard let rawEtag = head.header("X-Linked-Etag") ?? head.header("ETag") else { throw HubError("\(url): the answer has no ETag") }
        let etag = Self.normalizedEtag(rawEtag)
        let size = (head.header("X-Linked-Size") ?? head.header("Content-Length")).flatMap { Int($0) }
        if let cached = cache.cachedFile(repo: repo, file: file, revision: commit),
           FileManager.default.fileExists(atPath: cache.repoFolder(repo).appendingPathComponent("blobs/\(etag)").path) {
            if revision != commit, cache.cachedFile(repo: repo, file: file, revision: revision) == nil {
                _ = try? cache.store(repo: repo, file: file, revision: revision, commit: commit, etag: etag, completed: cached)
            }
            return cached
        }
        // Large files redirect to a CDN: download from there (the original URL, redirects followed, otherwise).
        let source = head.header("Location").map { $0.hasPrefix("/") ? endpoint + $0 : $0 } ?? url
        let blobs = cache.repoFolder(repo).appendingPathComponent("blobs")
        try FileManager.default.createDirectory(at: blobs, withIntermediateDirectories: true)
        let partial = blobs.appendingPathComponent("\(etag).incomplete")
        try HTTP.download(source, to: partial, headers: source == url ? authorization() : [:], expectedSize: size) { done, total in
            hubLog.notice("downloading \(repo)/\(file): \(Self.bytes(done))\(total.map { " of \(Self.bytes($0)) (\(100 * done / max($0, 1))%)" } ?? "")")
        }
        // Verify before anything the cache reads points at it.
        let got = (try FileManager.default.attributesOfItem(atPath: partial.path)[.size] as? Int) ?? -1
        if let size, got < size {
            throw HubError("\(url): the transfer ended after \(got) of \(size) bytes; what arrived is kept and the next run resumes it")
        }
        if let size, got > size {
            try? FileManager.default.removeItem(at: partial)
            throw HubError("\(url): downloaded \(got) bytes, the hub says \(size); the file was removed — run again to fetch it anew")
        }
        if etag.count == 64, etag.allSatisfy(\.isHexDigit) {
            let digest = try FileDigest.sha256(partial.path)
            if digest != etag.lowercased() {
                try? FileManager.default.removeItem(at: partial)
                throw HubError("\(url): SHA-256 \(digest) does not match the hub's \(etag); the download was removed — run again to fetch it anew")
            }
        }
        return try cache.store(repo: repo, file: file, revision: revision, commit: commit, etag: etag, completed: partial)
        #else
        if let cached = cache.cachedFile(repo: repo, file: file, revision: revision) { return cached }
        throw HubError("this build has no network access (a device bundle): \(repo)/\(file) is not in the cache at \(cache.repoFolder(repo).path); pass it with --weights")
        #endif
    }

    func authorization() -> [String: String] { token.map { ["Authorization": "Bearer \($0)"] } ?? [:] }

    /// An etag without quotes or the weak prefix (`W/"abc"` → `abc`), as huggingface_hub stores it.
    static func normalizedEtag(_ e: String) -> String {
        var s = e.trimmingCharacters(in: .whitespaces)
        if s.hasPrefix("W/") { s.removeFirst(2) }
        return s.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
    }

    static func bytes(_ n: Int) -> String { String(format: "%.1f MiB", Double(n) / 1_048_576) }
}

/// The timm side: a model name with a pretrained tag is a hub repository `timm/<name>.<tag>` holding
/// `model.safetensors`.
public enum TimmHub {
    public static func repository(forModel name: String) throws -> String {
        guard name.contains("."), !name.hasSuffix(".json"), let tag = name.split(separator: ".", maxSplits: 1).last, !tag.isEmpty else {
            throw HubError("--model \(name) without --weights: name a pretrained tag (timm's `name.tag`, e.g. vit_small_patch16_224.augreg_in21k) so that timm/\(name).<tag> can be fetched from the hub, or pass --weights")
        }
        return "timm/\(name)"
    }
}
