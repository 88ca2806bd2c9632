import Foundation
#if canImport(FoundationNetworking) && !VKPROBE_NO_NETWORK
import FoundationNetworking
#endif

#if canImport(FoundationNetworking) && !VKPROBE_NO_NETWORK || os(macOS)
/// Blocking HTTP on URLSession: a request whose redirects are optionally not followed, and a
/// download appended to a partial file (resumed with `Range`), reported as it goes.
enum HTTP {
    struct Response {
        let status: Int
        let headers: [String: String]
        func header(_ name: String) -> String? { headers.first { $0.key.lowercased() == name.lowercased() }?.value }
    }

    final class Delegate: NSObject, URLSessionDataDelegate, @unchecked Sendable {
        let followRedirects: Bool
        var response: HTTPURLResponse?
        var error: Error?
        var sink: FileHandle?
        var received = 0, base = 0, total: Int?
        var progress: ((Int, Int?) -> Void)?
        var lastReport = Date.distantPast
        let done = DispatchSemaphore(value: 0)
        var restarted = false
        init(followRedirects: Bool) { self.followRedirects = followRedirects }

        func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                        newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void) {
            completionHandler(followRedirects ? request : nil)
        }

        func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                        completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
            self.response = response as? HTTPURLResponse
            // A server that ignored the range answers 200 with the whole body: start over.
            if let sink, self.response?.statusCode == 200, base > 0 {
                try? sink.truncate(atOffset: 0)
                base = 0; restarted = true
            }
            if total == nil, let length = self.response?.expectedContentLength, length >= 0 { total = base + Int(length) }
            completionHandler(.allow)
        }

        func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
            guard let sink, (200..<300).contains(response?.statusCode ?? 0) else { return }
            do { try sink.write(contentsOf: data) } catch { self.error = error; dataTask.cancel(); return }
            received += data.count
            if Date().timeIntervalSince(lastReport) > 1 { lastReport = Date(); progress?(base + received, total) }
        }

        func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
            if let error, self.error == nil { self.error = error }
            done.signal()
        }
    }

    static func request(_ url: String, method: String, headers: [String: String], followRedirects: Bool) throws -> Response {
        guard let u = URL(string: url) else { throw HubError("not a URL: \(url)") }
        var req = URLRequest(url: u, timeoutInterval: 60)
        req.httpMethod = method
        req.setValue("identity", forHTTPHeaderField: "Accept-Encoding")
        for (k, v) in headers { req.setValue(v, forHTTPHeaderField: k) }
        let d = Delegate(followRedirects: followRedirects)
        let session = URLSession(configuration: .ephemeral, delegate: d, delegateQueue: nil)
        defer { session.finishTasksAndInvalidate() }
        session.dataTask(with: req).resume()
        d.done.wait()
        if let r = d.response {
            return Response(status: r.statusCode, headers: Dictionary(r.allHeaderFields.map { ("\($0.key)", "\($0.value)") }, uniquingKeysWith: { a, _ in a }))
        }
        throw d.error ?? HubError("\(url): no answer")
    }

    /// Appends the body to `path` (resuming from its current size), expecting `expectedSize` bytes in all.
    static func download(_ url: String, to path: URL, headers: [String: String], expectedSize: Int?, progress: @escaping (Int, Int?) -> Void) throws {
        guard let u = URL(string: url) else { throw HubError("not a URL: \(url)") }
        let fm = FileManager.default
        if !fm.fileExists(atPath: path.path) { fm.createFile(atPath: path.path, contents: nil) }
        let have = (try fm.attributesOfItem(atPath: path.path)[.size] as? Int) ?? 0
        if let expectedSize, have == expectedSize { return }
        if let expectedSize, have > expectedSize { try fm.removeItem(at: path); fm.createFile(atPath: path.path, contents: nil) }
        let start = (try fm.attributesOfItem(atPath: path.path)[.size] as? Int) ?? 0
        guard let sink = FileHandle(forWritingAtPath: path.path) else { throw HubError("\(path.path): cannot be written") }
        defer { try? sink.close() }
        try sink.seekToEnd()
        var req = URLRequest(url: u, timeoutInterval: 120)
        req.setValue("identity", forHTTPHeaderField: "Accept-Encoding")
        for (k, v) in headers { req.setValue(v, forHTTPHeaderField: k) }
        if start > 0 { req.setValue("bytes=\(start)-", forHTTPHeaderField: "Range") }
        let d = Delegate(followRedirects: true)
        d.sink = sink; d.base = start; d.total = expectedSize; d.progress = progress
        let session = URLSession(configuration: .ephemeral, delegate: d, delegateQueue: nil)
        defer { session.finishTasksAndInvalidate() }
        if start > 0 { progress(start, expectedSize) }
        session.dataTask(with: req).resume()
        d.done.wait()
        let status = d.response?.statusCode ?? 0
        if let error = d.error {
            throw HubError("\(url): the download stopped after \(d.base + d.received) bytes (\(error.localizedDescription)); what arrived is kept and the next run resumes it")
        }
        guard (200..<300).contains(status) else { throw HubError("\(url): the hub answered \(status) to the download") }
        progress(d.base + d.received, d.total)
    }
}
#endif
