import Foundation

/// Bench/compare_torch.py --serve: the peer timed on request, so that each of our measurements
/// sits next to the peer's of the same case. A shared machine drifts (1.5–3× over minutes here),
/// and timing all of ours and then all of theirs let that drift into the ratios.
final class PeerServer {
    let label: String
    private let process = Process()
    private let requests = Pipe(), answers = Pipe()

    /// Starts the peer; nil (with the reason printed) where it cannot time (no script, no PyTorch).
    init?(gpu: Bool, extra: [String]) {
        guard let script = peerScript() else { return nil }
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [ProcessInfo.processInfo.environment["VKPROBE_PYTHON"] ?? "python3", script, "--serve",
                             "--torch-device", gpu ? "cuda" : "cpu"] + extra
        process.standardInput = requests
        process.standardOutput = answers
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch {
            print("(could not start the peer \(script): \(error))")
            return nil
        }
        guard let first = Self.readAnswer(answers.fileHandleForReading), let label = first["label"] as? String else {
            requests.fileHandleForWriting.closeFile()
            process.waitUntilExit()
            return nil
        }
        self.label = label
    }

    deinit {
        requests.fileHandleForWriting.closeFile()
        process.waitUntilExit()
    }

    /// The peer's median milliseconds for `op` at `shape`, or why it has none.
    func time(op: String, shape: [Int], repeats: Int) -> Result<Double, PeerError> {
        let request: [String: Any] = ["op": op, "shape": shape, "repeats": repeats]
        guard let data = try? JSONSerialization.data(withJSONObject: request) else { return .failure(PeerError("unencodable request")) }
        requests.fileHandleForWriting.write(data + Data("\n".utf8))
        guard let answer = Self.readAnswer(answers.fileHandleForReading) else { return .failure(PeerError("the peer exited")) }
        if let ms = answer["ms"] as? Double { return .success(ms) }
        return .failure(PeerError(answer["error"] as? String ?? "no answer"))
    }

    /// One JSON line from the peer (nil at end of file or on a malformed line).
    private static func readAnswer(_ handle: FileHandle) -> [String: Any]? {
        var line = Data()
        while true {
            let byte = handle.readData(ofLength: 1)
            if byte.isEmpty { return nil }
            if byte[byte.startIndex] == UInt8(ascii: "\n") { break }
            line.append(byte)
        }
        return (try? JSONSerialization.jsonObject(with: line)) as? [String: Any]
    }
}

struct PeerError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// One of our records with the peer's time beside it, as written to X.peer.json: the record's
/// fields, then those compare_torch.py adds, plus each round's pair.
struct PeerRecord: Encodable {
    let record: BenchRecord
    let peer: String
    let peer_ms: Double
    let peer_gflops: Double?
    /// The median of the per-round ratios (each round's pair timed back to back).
    let ours_over_peer: Double
    let ours_ms_rounds: [Double]
    let peer_ms_rounds: [Double]
    let ratioRange: (Double, Double)

    init(_ r: BenchRecord, peer: String, oursRounds: [Double], peerRounds: [Double]) {
        record = r
        self.peer = peer
        let peerMS = median(peerRounds)
        peer_ms = peerMS
        peer_gflops = r.gflops.map { $0 * r.median_ms / peerMS }
        let ratios = zip(oursRounds, peerRounds).map { $0 / $1 }
        ours_over_peer = median(ratios)
        ratioRange = (ratios.min() ?? .nan, ratios.max() ?? .nan)
        ours_ms_rounds = oursRounds
        peer_ms_rounds = peerRounds
    }

    private enum Keys: String, CodingKey { case peer, peer_ms, peer_gflops, ours_over_peer, ours_ms_rounds, peer_ms_rounds }

    /// One flat object: the record's keys and the peer's in the same container.
    func encode(to encoder: Encoder) throws {
        try record.encode(to: encoder)
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(peer, forKey: .peer)
        try c.encode(peer_ms, forKey: .peer_ms)
        try c.encodeIfPresent(peer_gflops, forKey: .peer_gflops)
        try c.encode(ours_over_peer, forKey: .ours_over_peer)
        try c.encode(ours_ms_rounds, forKey: .ours_ms_rounds)
        try c.encode(peer_ms_rounds, forKey: .peer_ms_rounds)
    }
}

func printPeerTable(_ records: [PeerRecord], label: String, rounds: Int) {
    print("\npeer: \(label); each case timed right after ours, \(rounds) round\(rounds == 1 ? "" : "s") (medians; ours/peer the median of the per-round ratios)")
    let header = ["op", "shape", "ours ms", "peer ms", "ours/peer", "range", "ours GFLOP/s", "peer GFLOP/s"]
    let rows = records.map { r in
        [r.record.op, r.record.shape.map(String.init).joined(separator: "×"), String(format: "%.3f", r.record.median_ms), String(format: "%.3f", r.peer_ms),
         String(format: "%.2f", r.ours_over_peer), String(format: "%.2f–%.2f", r.ratioRange.0, r.ratioRange.1),
         r.record.gflops.map { String(format: "%.2f", $0) } ?? "-", r.peer_gflops.map { String(format: "%.2f", $0) } ?? "-"]
    }
    printColumns(header, rows, leftAligned: 2)
}
