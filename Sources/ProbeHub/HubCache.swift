import Foundation

/// The Hugging Face cache as `huggingface_hub` lays it out, shared with timm:
/// `$HF_HUB_CACHE` (else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`) /
/// `models--<org>--<name>/` with `blobs/<etag>` (the file, named by its SHA-256 for LFS files),
/// `snapshots/<commit>/<file>` (a relative symlink to the blob) and `refs/<revision>` (the commit).
public struct HubCache {
    public let root: URL

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        if let c = environment["HF_HUB_CACHE"], !c.isEmpty { root = URL(fileURLWithPath: c) }
        else if let h = environment["HF_HOME"], !h.isEmpty { root = URL(fileURLWithPath: h).appendingPathComponent("hub") }
        else if let x = environment["XDG_CACHE_HOME"], !x.isEmpty { root = URL(fileURLWithPath: x).appendingPathComponent("huggingface/hub") }
        else { root = FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/huggingface/hub") }
    }

    /// `models--timm--vit_small_patch16_224.augreg_in21k` for `timm/vit_small_patch16_224.augreg_in21k`.
    public func repoFolder(_ repo: String) -> URL { root.appendingPathComponent("models--" + repo.replacingOccurrences(of: "/", with: "--")) }

    /// The cached file of a revision, when the cache has it (what `HF_HUB_OFFLINE=1` reads).
    public func cachedFile(repo: String, file: String, revision: String) -> URL? {
        let folder = repoFolder(repo)
        var commit = revision
        if let ref = try? String(contentsOf: folder.appendingPathComponent("refs/\(revision)"), encoding: .utf8) {
            commit = ref.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let path = folder.appendingPathComponent("snapshots/\(commit)/\(file)")
        return FileManager.default.fileExists(atPath: path.path) ? path : nil
    }

    /// Moves a verified download into the blob store, points the snapshot and the ref at it.
    func store(repo: String, file: String, revision: String, commit: String, etag: String, completed: URL) throws -> URL {
        let folder = repoFolder(repo), fm = FileManager.default
        let blob = folder.appendingPathComponent("blobs/\(etag)")
        try fm.createDirectory(at: blob.deletingLastPathComponent(), withIntermediateDirectories: true)
        if fm.fileExists(atPath: blob.path) { try fm.removeItem(at: completed) } else { try fm.moveItem(at: completed, to: blob) }
        let snapshot = folder.appendingPathComponent("snapshots/\(commit)/\(file)")
        try fm.createDirectory(at: snapshot.deletingLastPathComponent(), withIntermediateDirectories: true)
        try? fm.removeItem(at: snapshot)
        // Relative, as huggingface_hub makes it: ../../blobs/<etag> (one more ../ per directory in `file`).
        let depth = file.split(separator: "/").count - 1
        let target = String(repeating: "../", count: 2 + depth) + "blobs/\(etag)"
        try fm.createSymbolicLink(atPath: snapshot.path, withDestinationPath: target)
        if revision != commit {
            let ref = folder.appendingPathComponent("refs/\(revision)")
            try fm.createDirectory(at: ref.deletingLastPathComponent(), withIntermediateDirectories: true)
            try commit.write(to: ref, atomically: true, encoding: .utf8)
        }
        return snapshot
    }
}
