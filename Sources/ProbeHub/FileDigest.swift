import Crypto
import Foundation

/// Digests of whole files, streamed in 8 MiB pieces through swift-crypto: the hub names a large
/// file's blob by its SHA-256 (the LFS etag); torchvision checks its dataset archives by MD5.
public enum FileDigest {
    public static func sha256(_ path: String) throws -> String { try digest(path, into: SHA256()) }
    public static func md5(_ path: String) throws -> String { try digest(path, into: Insecure.MD5()) }

    private static func digest<H: HashFunction>(_ path: String, into hasher: H) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw HubError("\(path): cannot be read") }
        defer { try? handle.close() }
        var h = hasher
        while let chunk = try handle.read(upToCount: 8 << 20), !chunk.isEmpty { h.update(data: chunk) }
        return h.finalize().map { String(format: "%02x", $0) }.joined()
    }
}
