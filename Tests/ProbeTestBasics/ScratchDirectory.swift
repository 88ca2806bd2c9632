import Foundation

/// This test process's scratch root, removed when the process exits (set `VKPROBE_KEEP_TEST_FILES=1`
/// to keep it for a look).
private let testScratchRoot: URL = {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("vkprobe-tests-\(getpid())-\(UUID().uuidString.prefix(8))")
    if ProcessInfo.processInfo.environment["VKPROBE_KEEP_TEST_FILES"] != "1" {
        atexit { try? FileManager.default.removeItem(at: testScratchRoot) }
    }
    return root
}()

/// A fresh directory under this test process's scratch root.
public func temporaryDirectory(_ prefix: String = "vkprobe-test") throws -> URL {
    let url = testScratchRoot.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}
