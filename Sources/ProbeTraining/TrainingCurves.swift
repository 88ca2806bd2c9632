import Foundation
import ProbeData

/// A small SVG plot of a run: train and val loss (left axis) and val acc@1 (right axis, %) per epoch.
public enum TrainingCurves {
    public static func svg(title: String, history: [EpochMetrics]) -> String {
        let (w, h, left, right, top, bottom) = (640.0, 372.0, 56.0, 56.0, 48.0, 40.0)
        let pw = w - left - right, ph = h - top - bottom
        let epochs = max(history.count, 1)
        let maxLoss = max(history.flatMap { [$0.train_loss, $0.val_loss] }.filter(\.isFinite).max() ?? 1, 1e-6)
        func x(_ i: Int) -> Double { left + (epochs == 1 ? pw / 2 : pw * Double(i) / Double(epochs - 1)) }
        func yLoss(_ v: Double) -> Double { top + ph * (1 - min(max(v / maxLoss, 0), 1)) }
        func yAcc(_ v: Double) -> Double { top + ph * (1 - min(max(v / 100, 0), 1)) }
        func path(_ pts: [(Double, Double)], _ color: String, dashed: Bool = false) -> String {
            guard !pts.isEmpty else { return "" }
            let d = pts.enumerated().map { "\($0.offset == 0 ? "M" : "L")\(String(format: "%.1f", $0.element.0)),\(String(format: "%.1f", $0.element.1))" }.joined(separator: " ")
            return "<path d=\"\(d)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"\(dashed ? " stroke-dasharray=\"5,4\"" : "")/>"
                + pts.map { "<circle cx=\"\(String(format: "%.1f", $0.0))\" cy=\"\(String(format: "%.1f", $0.1))\" r=\"2.5\" fill=\"\(color)\"/>" }.joined()
        }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" font-family=\"sans-serif\" font-size=\"12\">"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>"
        s += "<text x=\"\(Int(w / 2))\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">\(title.replacingOccurrences(of: "<", with: "&lt;"))</text>"
        s += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(pw)\" height=\"\(ph)\" fill=\"none\" stroke=\"#999\"/>"
        for k in 0...4 {
            let yy = top + ph * Double(k) / 4
            s += "<line x1=\"\(left)\" y1=\"\(yy)\" x2=\"\(left + pw)\" y2=\"\(yy)\" stroke=\"#eee\"/>"
            s += "<text x=\"\(left - 6)\" y=\"\(yy + 4)\" text-anchor=\"end\">\(String(format: "%.2f", maxLoss * (1 - Double(k) / 4)))</text>"
            s += "<text x=\"\(left + pw + 6)\" y=\"\(yy + 4)\">\(100 - 25 * k)%</text>"
        }
        for (i, m) in history.enumerated() where epochs <= 20 || i % max(1, epochs / 10) == 0 {
            s += "<text x=\"\(String(format: "%.1f", x(i)))\" y=\"\(h - bottom + 16)\" text-anchor=\"middle\">\(m.epoch + 1)</text>"
        }
        s += "<text x=\"\(Int(left + pw / 2))\" y=\"\(Int(h - 6))\" text-anchor=\"middle\">epoch</text>"
        s += path(history.enumerated().map { (x($0.offset), yLoss($0.element.train_loss)) }, "#1f77b4")
        s += path(history.enumerated().map { (x($0.offset), yLoss($0.element.val_loss)) }, "#1f77b4", dashed: true)
        s += path(history.enumerated().map { (x($0.offset), yAcc($0.element.val_acc1)) }, "#d62728")
        s += "<text x=\"\(left)\" y=\"\(top - 8)\" fill=\"#1f77b4\">loss: train — / val - -</text>"
        s += "<text x=\"\(left + pw)\" y=\"\(top - 8)\" text-anchor=\"end\" fill=\"#d62728\">val acc@1 (right axis)</text>"
        return s + "</svg>\n"
    }
}

extension TrainingCurves {
    /// The same plot as pixels (for TensorBoard's image summaries): train loss (blue), val loss
    /// (light blue) scaled to the run's largest loss, val acc@1 (red) on 0–100 %, per epoch, with
    /// a grid of quarters. No text: TensorBoard shows the tag and step.
    public static func raster(history: [EpochMetrics], width: Int = 320, height: Int = 200) -> RGBImage {
        var px = [UInt8](repeating: 255, count: width * height * 3)
        let (left, right, top, bottom) = (8, 8, 8, 8)
        let pw = width - left - right, ph = height - top - bottom
        func put(_ x: Int, _ y: Int, _ c: (UInt8, UInt8, UInt8)) {
            guard (0..<width).contains(x), (0..<height).contains(y) else { return }
            let i = (y * width + x) * 3
            px[i] = c.0; px[i + 1] = c.1; px[i + 2] = c.2
        }
        func line(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, _ c: (UInt8, UInt8, UInt8), thick: Bool = true) {
            let steps = max(abs(x1 - x0), abs(y1 - y0), 1)
            for s in 0...steps {
                let x = x0 + (x1 - x0) * s / steps, y = y0 + (y1 - y0) * s / steps
                put(x, y, c)
                if thick { put(x, y + 1, c); put(x + 1, y, c) }
            }
        }
        for k in 0...4 { let y = top + ph * k / 4; line(left, y, left + pw, y, (230, 230, 230), thick: false) }
        line(left, top, left, top + ph, (150, 150, 150), thick: false); line(left + pw, top, left + pw, top + ph, (150, 150, 150), thick: false)
        let epochs = max(history.count, 1)
        let maxLoss = max(history.flatMap { [$0.train_loss, $0.val_loss] }.filter(\.isFinite).max() ?? 1, 1e-6)
        func x(_ i: Int) -> Int { left + (epochs == 1 ? pw / 2 : pw * i / (epochs - 1)) }
        func y(_ v: Double, _ scale: Double) -> Int { top + Int(Double(ph) * (1 - min(max(v.isFinite ? v / scale : 0, 0), 1))) }
        for (value, scale, color) in [(\EpochMetrics.train_loss, maxLoss, (31 as UInt8, 119 as UInt8, 180 as UInt8)),
                                      (\EpochMetrics.val_loss, maxLoss, (140, 190, 230)), (\EpochMetrics.val_acc1, 100.0, (214, 39, 40))] {
            let pts = history.enumerated().map { (x($0.offset), y($0.element[keyPath: value], scale)) }
            for (a, b) in zip(pts, pts.dropFirst()) { line(a.0, a.1, b.0, b.1, color) }
            for p in pts { for dx in -2...2 { for dy in -2...2 { put(p.0 + dx, p.1 + dy, color) } } }
        }
        return RGBImage(width: width, height: height, pixels: px)
    }
}
