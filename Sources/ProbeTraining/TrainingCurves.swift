import Foundation

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
