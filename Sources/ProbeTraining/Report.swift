import Foundation
import ProbeData

/// `vkprobe report`: one self-contained HTML page over one or more runs — per head the best
/// top-1/top-5, parameters, multiply-adds and measured training images/s; accuracy against
/// parameters and against throughput (the paper's trade-off, log axes); every head's validation
/// curve on one chart; a sweep's grid as a heat map; EP's attention maps where the run has them.
/// The figures are also written as SVG files beside the page.
public struct RunReport {
    public struct Probe {
        public var run: String
        public var name: String
        public var head: String
        public var setting: String
        public var summary: HeadSummary
        public var history: [EpochMetrics]
    }
    public var probes: [Probe] = []
    public var runs: [String] = []
    public var devices: [String] = []
    /// Contact sheets of attention maps found beside the runs (PNG bytes, source path).
    public var maps: [(path: String, png: Data)] = []

    public init(runs dirs: [URL]) throws {
        for dir in dirs {
            let url = dir.appendingPathComponent("summary.json")
            guard let data = try? Data(contentsOf: url) else { throw TrainingError("\(url.path) is missing: not a `vkprobe train` output directory") }
            let summary: RunSummary
            do { summary = try JSONDecoder().decode(RunSummary.self, from: data) } catch { throw TrainingError("\(url.path): unreadable, \(RunFileJSON.describe(error)); is it a summary.json of vkprobe train?") }
            let label = dir.standardizedFileURL.lastPathComponent == "run" ? dir.standardizedFileURL.deletingLastPathComponent().lastPathComponent : dir.lastPathComponent
            runs.append(label)
            if let d = summary.device, !devices.contains(d) { devices.append(d) }
            for (name, s) in summary.heads.sorted(by: { $0.key < $1.key }) {
                let metrics = dir.appendingPathComponent(name).appendingPathComponent("metrics.jsonl")
                let history = EpochMetrics.lines((try? String(contentsOf: metrics, encoding: .utf8)) ?? "")
                probes.append(Probe(run: label, name: name, head: s.head ?? String(name.split(separator: "/").first ?? ""),
                                    setting: s.setting ?? "", summary: s, history: history))
            }
            for candidate in RunMaps.sheets(of: dir) {
                if let png = try? Data(contentsOf: candidate), !maps.contains(where: { $0.path == candidate.path }) { maps.append((candidate.path, png)) }
            }
        }
        guard !probes.isEmpty else { throw TrainingError("no heads in \(dirs.map(\.path).joined(separator: ", "))") }
    }

    // MARK: Figures

    static let palette = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442", "#000000",
                          "#882255", "#44AA99", "#117733", "#999933", "#AA4499", "#332288", "#DDCC77", "#88CCEE"]
    func color(_ head: String) -> String {
        let heads = Array(Set(probes.map(\.head))).sorted()
        return Self.palette[(heads.firstIndex(of: head) ?? 0) % Self.palette.count]
    }
    static func esc(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;")
    }

    /// A scatter plot of best top-1 against `x` (log scale), one labelled point per probe.
    func scatter(title: String, xLabel: String, x: (Probe) -> Double?) -> String {
        let points = probes.compactMap { p in x(p).flatMap { $0 > 0 ? (p, $0) : nil } }
        let (W, H, L, R, T, B) = (600.0, 380.0, 60.0, 110.0, 30.0, 50.0)
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(Int(W)) \(Int(H))\" width=\"\(Int(W))\" height=\"\(Int(H))\" font-family=\"sans-serif\" font-size=\"11\">"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/><text x=\"\(W / 2)\" y=\"18\" text-anchor=\"middle\" font-size=\"13\">\(Self.esc(title))</text>"
        guard !points.isEmpty else { return s + "<text x=\"\(W / 2)\" y=\"\(H / 2)\" text-anchor=\"middle\">no measurements in these runs (a summary.json written before per-probe timing)</text></svg>" }
        let xs = points.map { log10($0.1) }, ys = points.map { $0.0.summary.best_acc1 }
        var (x0, x1) = (floor(xs.min()!), ceil(xs.max()!)); if x1 - x0 < 1 { x1 = x0 + 1 }
        let y0 = max(0, floor((ys.min()! - 5) / 10) * 10), y1 = min(100, ceil((ys.max()! + 5) / 10) * 10)
        func px(_ v: Double) -> Double { L + (log10(v) - x0) / (x1 - x0) * (W - L - R) }
        func py(_ v: Double) -> Double { H - B - (v - y0) / max(y1 - y0, 1e-9) * (H - T - B) }
        s += "<line x1=\"\(L)\" y1=\"\(H - B)\" x2=\"\(W - R)\" y2=\"\(H - B)\" stroke=\"#333\"/><line x1=\"\(L)\" y1=\"\(T)\" x2=\"\(L)\" y2=\"\(H - B)\" stroke=\"#333\"/>"
        for e in stride(from: Int(x0), through: Int(x1), by: 1) {
            let xx = L + (Double(e) - x0) / (x1 - x0) * (W - L - R)
            s += "<line x1=\"\(xx)\" y1=\"\(T)\" x2=\"\(xx)\" y2=\"\(H - B)\" stroke=\"#eee\"/><text x=\"\(xx)\" y=\"\(H - B + 14)\" text-anchor=\"middle\">1e\(e)</text>"
        }
        for v in stride(from: y0, through: y1, by: y1 - y0 > 60 ? 20 : 10) {
            s += "<line x1=\"\(L)\" y1=\"\(py(v))\" x2=\"\(W - R)\" y2=\"\(py(v))\" stroke=\"#eee\"/><text x=\"\(L - 6)\" y=\"\(py(v) + 4)\" text-anchor=\"end\">\(Int(v))</text>"
        }
        s += "<text x=\"\((L + W - R) / 2)\" y=\"\(H - 12)\" text-anchor=\"middle\">\(Self.esc(xLabel))</text>"
        s += "<text transform=\"translate(14,\((T + H - B) / 2)) rotate(-90)\" text-anchor=\"middle\">best val top-1 (%)</text>"
        for (p, v) in points {
            let (cx, cy) = (px(v), py(p.summary.best_acc1))
            let label = runs.count > 1 ? "\(p.name) (\(p.run))" : p.name
            s += "<circle cx=\"\(cx)\" cy=\"\(cy)\" r=\"5\" fill=\"\(color(p.head))\" fill-opacity=\"0.85\"><title>\(Self.esc(label)): \(String(format: "%.2f", p.summary.best_acc1))%</title></circle>"
            s += "<text x=\"\(cx + 7)\" y=\"\(cy - 5)\">\(Self.esc(label))</text>"
        }
        return s + "</svg>"
    }

    /// Every probe's validation top-1 per epoch on one chart.
    func curves() -> String {
        let (W, H, L, R, T, B) = (720.0, 380.0, 50.0, 170.0, 30.0, 45.0)
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(Int(W)) \(Int(H))\" width=\"\(Int(W))\" height=\"\(Int(H))\" font-family=\"sans-serif\" font-size=\"11\">"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/><text x=\"\((W - R) / 2)\" y=\"18\" text-anchor=\"middle\" font-size=\"13\">validation top-1 per epoch</text>"
        let maxEpoch = max(probes.flatMap { $0.history.map(\.epoch) }.max() ?? 0, 1) + 1
        func px(_ e: Int) -> Double { L + Double(e) / Double(maxEpoch) * (W - L - R) }
        func py(_ v: Double) -> Double { H - B - v / 100 * (H - T - B) }
        s += "<line x1=\"\(L)\" y1=\"\(H - B)\" x2=\"\(W - R)\" y2=\"\(H - B)\" stroke=\"#333\"/><line x1=\"\(L)\" y1=\"\(T)\" x2=\"\(L)\" y2=\"\(H - B)\" stroke=\"#333\"/>"
        for v in stride(from: 0, through: 100, by: 20) {
            s += "<line x1=\"\(L)\" y1=\"\(py(Double(v)))\" x2=\"\(W - R)\" y2=\"\(py(Double(v)))\" stroke=\"#eee\"/><text x=\"\(L - 6)\" y=\"\(py(Double(v)) + 4)\" text-anchor=\"end\">\(v)</text>"
        }
        let step = max(1, Int((Double(maxEpoch) / 8).rounded(.up)))
        for e in stride(from: 0, through: maxEpoch, by: step) {
            s += "<line x1=\"\(px(e))\" y1=\"\(H - B)\" x2=\"\(px(e))\" y2=\"\(H - B + 4)\" stroke=\"#333\"/><text x=\"\(px(e))\" y=\"\(H - B + 16)\" text-anchor=\"middle\">\(e)</text>"
        }
        s += "<text x=\"\((L + W - R) / 2)\" y=\"\(H - 8)\" text-anchor=\"middle\">epoch</text>"
        for (i, p) in probes.enumerated() where !p.history.isEmpty {
            let pts = p.history.sorted { $0.epoch < $1.epoch }.map { "\(px($0.epoch + 1)),\(py($0.val_acc1))" }.joined(separator: " ")
            let dash = p.setting.isEmpty ? "" : " stroke-dasharray=\"\(2 + (i % 3) * 2),2\""
            s += "<polyline points=\"\(pts)\" fill=\"none\" stroke=\"\(color(p.head))\" stroke-width=\"1.6\"\(dash)><title>\(Self.esc(p.name))</title></polyline>"
            let y = T + 12 + Double(i) * 14
            if y < H - 10 {
                s += "<line x1=\"\(W - R + 10)\" y1=\"\(y - 4)\" x2=\"\(W - R + 28)\" y2=\"\(y - 4)\" stroke=\"\(color(p.head))\" stroke-width=\"2\"\(dash)/><text x=\"\(W - R + 32)\" y=\"\(y)\">\(Self.esc(runs.count > 1 ? "\(p.name) · \(p.run)" : p.name))</text>"
            }
        }
        return s + "</svg>"
    }

    /// The sweep grid: heads × settings, cells coloured and labelled by best top-1; nil without a sweep.
    func heatmap() -> String? {
        let swept = probes.filter { !$0.setting.isEmpty }
        guard !swept.isEmpty else { return nil }
        let heads = Array(Set(swept.map(\.head))).sorted(), settings = Array(Set(swept.map(\.setting))).sorted()
        let (cw, ch, L, T) = (90.0, 28.0, 90.0, 60.0)
        let W = L + cw * Double(settings.count) + 20, H = T + ch * Double(heads.count) + 20
        let accs = swept.map(\.summary.best_acc1)
        let lo = accs.min()!, hi = max(accs.max()!, lo + 1e-9)
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(Int(W)) \(Int(H))\" width=\"\(Int(W))\" height=\"\(Int(H))\" font-family=\"sans-serif\" font-size=\"11\">"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/><text x=\"\(W / 2)\" y=\"18\" text-anchor=\"middle\" font-size=\"13\">sweep: best val top-1 (%)</text>"
        for (j, st) in settings.enumerated() { s += "<text x=\"\(L + cw * (Double(j) + 0.5))\" y=\"\(T - 8)\" text-anchor=\"middle\">\(Self.esc(st))</text>" }
        for (i, h) in heads.enumerated() {
            s += "<text x=\"\(L - 8)\" y=\"\(T + ch * (Double(i) + 0.5) + 4)\" text-anchor=\"end\">\(Self.esc(h))</text>"
            for (j, st) in settings.enumerated() {
                guard let p = swept.first(where: { $0.head == h && $0.setting == st }) else { continue }
                let t = (p.summary.best_acc1 - lo) / (hi - lo)
                let (r, g, b) = (Int(255 - 200 * t), Int(255 - 120 * t), Int(255 - 40 * t))
                s += "<rect x=\"\(L + cw * Double(j))\" y=\"\(T + ch * Double(i))\" width=\"\(cw - 2)\" height=\"\(ch - 2)\" fill=\"rgb(\(r),\(g),\(b))\"/>"
                s += "<text x=\"\(L + cw * (Double(j) + 0.5))\" y=\"\(T + ch * (Double(i) + 0.5) + 4)\" text-anchor=\"middle\" fill=\"\(t > 0.6 ? "white" : "black")\">\(String(format: "%.1f", p.summary.best_acc1))</text>"
            }
        }
        return s + "</svg>"
    }

    /// Layer-wise probing: best top-1 against the tap (blocks in order, then `norm`), a line per
    /// head (and setting); nil unless the runs probed at least two taps.
    func depthChart() -> String? {
        let tapped = probes.filter { $0.summary.tap != nil }
        func order(_ t: String) -> Int { t == "norm" ? Int.max : Int(t.dropFirst("block".count)) ?? Int.max - 1 }
        let taps = Array(Set(tapped.compactMap(\.summary.tap))).sorted { order($0) < order($1) }
        guard taps.count >= 2 else { return nil }
        let (W, H, L, R, T, B) = (640.0, 360.0, 60.0, 150.0, 40.0, 50.0)
        let accs = tapped.map(\.summary.best_acc1)
        let lo = max(0, (accs.min() ?? 0) - 2), hi = min(100, (accs.max() ?? 100) + 2)
        func px(_ i: Int) -> Double { L + (W - L - R) * Double(i) / Double(max(taps.count - 1, 1)) }
        func py(_ a: Double) -> Double { T + (H - T - B) * (1 - (a - lo) / max(hi - lo, 1e-9)) }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(W))\" height=\"\(Int(H))\" font-family=\"sans-serif\" font-size=\"12\">"
        s += "<text x=\"\(W / 2)\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">accuracy against depth (layer-wise probing)</text>"
        s += "<line x1=\"\(L)\" y1=\"\(H - B)\" x2=\"\(W - R)\" y2=\"\(H - B)\" stroke=\"#444\"/><line x1=\"\(L)\" y1=\"\(T)\" x2=\"\(L)\" y2=\"\(H - B)\" stroke=\"#444\"/>"
        for (i, t) in taps.enumerated() { s += "<text x=\"\(px(i))\" y=\"\(H - B + 18)\" text-anchor=\"middle\">\(Self.esc(t))</text>" }
        for k in 0...4 {
            let a = lo + (hi - lo) * Double(k) / 4
            s += "<text x=\"\(L - 6)\" y=\"\(py(a) + 4)\" text-anchor=\"end\">\(String(format: "%.0f", a))</text>"
        }
        s += "<text x=\"\(L - 42)\" y=\"\(T + (H - T - B) / 2)\" transform=\"rotate(-90 \(L - 42) \(T + (H - T - B) / 2))\" text-anchor=\"middle\">best top-1 %</text>"
        let lines = Dictionary(grouping: tapped) { "\($0.run) \($0.head)\($0.setting.isEmpty ? "" : "/" + $0.setting)" }
        for (n, (label, group)) in lines.sorted(by: { $0.key < $1.key }).enumerated() {
            let points = group.compactMap { p -> (Int, Double)? in taps.firstIndex(of: p.summary.tap!).map { ($0, p.summary.best_acc1) } }.sorted { $0.0 < $1.0 }
            let c = color(group[0].head)
            s += "<polyline fill=\"none\" stroke=\"\(c)\" stroke-width=\"2\" points=\"" + points.map { "\(px($0.0)),\(py($0.1))" }.joined(separator: " ") + "\"/>"
            for (i, a) in points { s += "<circle cx=\"\(px(i))\" cy=\"\(py(a))\" r=\"4\" fill=\"\(c)\"><title>\(Self.esc(label)) at \(Self.esc(taps[i])): \(String(format: "%.2f", a))%</title></circle>" }
            s += "<text x=\"\(W - R + 10)\" y=\"\(T + 16 * Double(n) + 10)\" fill=\"\(c)\">\(Self.esc(label))</text>"
        }
        return s + "</svg>"
    }

    // MARK: Page

    /// Writes `index.html` and the SVG figures into `dir`; returns the page's path.
    @discardableResult
    public func write(to dir: URL) throws -> URL {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var figures: [(String, String)] = [
            ("accuracy-vs-parameters.svg", scatter(title: "accuracy vs parameters", xLabel: "trainable parameters (log)", x: { Double($0.summary.params) })),
            ("accuracy-vs-throughput.svg", scatter(title: "accuracy vs training throughput", xLabel: "training images/s on \(devices.first ?? "the device") (log)",
                                                   x: { $0.summary.train_images_per_s })),
            ("curves.svg", curves()),
        ]
        if let h = heatmap() { figures.append(("sweep.svg", h)) }
        if let d = depthChart() { figures.append(("accuracy-vs-depth.svg", d)) }
        for (name, svg) in figures { try svg.write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8) }
        var rows = ""
        for p in probes.sorted(by: { ($0.run, -$0.summary.best_acc1, $0.name) < ($1.run, -$1.summary.best_acc1, $1.name) }) {
            let s = p.summary
            rows += "<tr><td>\(Self.esc(p.run))</td><td><span class=\"dot\" style=\"background:\(color(p.head))\"></span>\(Self.esc(p.name))</td>"
                + "<td>\(String(format: "%.2f", s.best_acc1))</td><td>\(String(format: "%.2f", s.acc5))</td><td>\(s.best_epoch)</td>"
                + "<td>\(s.params)</td><td>\(s.macs_per_image.map(String.init) ?? "–")</td>"
                + "<td>\(s.train_images_per_s.map { String(format: "%.0f", $0) } ?? "–")</td><td>\(Self.esc(s.status))</td></tr>\n"
        }
        var html = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>VulkanProbe report: \(Self.esc(runs.joined(separator: ", ")))</title>
        <style>
        body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1500px; }
        table { border-collapse: collapse; margin: 12px 0 24px; font-size: 13px; }
        th, td { border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: right; }
        th:nth-child(-n+2), td:nth-child(-n+2) { text-align: left; }
        .dot { display: inline-block; width: 10px; height: 10px; border-radius: 5px; margin-right: 6px; }
        .figs { display: flex; flex-wrap: wrap; gap: 16px; }
        img.maps { max-width: 100%; border: 1px solid #ddd; }
        </style></head><body>
        <h1>VulkanProbe report</h1>
        <p>Runs: \(Self.esc(runs.joined(separator: ", "))). Device: \(Self.esc(devices.isEmpty ? "not recorded" : devices.joined(separator: ", "))). Top-1/top-5 at each probe's best validation epoch; images/s measured during training (GPU timestamps around the probe's forward, backward and optimiser step; the batch is shared by all probes).</p>
        <table><tr><th>run</th><th>head</th><th>top-1 %</th><th>top-5 %</th><th>epoch</th><th>parameters</th><th>MACs/image</th><th>train img/s</th><th>status</th></tr>
        \(rows)</table>
        <div class="figs">
        """
        for (_, svg) in figures { html += "<figure>\(svg)</figure>\n" }
        html += "</div>\n"
        for m in maps {
            html += "<h2>EP attention maps</h2><p>\(Self.esc(m.path))</p><img class=\"maps\" alt=\"EP attention maps\" src=\"data:image/png;base64,\(m.png.base64EncodedString())\">\n"
        }
        html += "</body></html>\n"
        let page = dir.appendingPathComponent("index.html")
        try html.write(to: page, atomically: true, encoding: .utf8)
        return page
    }
}
