import Foundation
import ProbeData
import ProbeTestSupport
import Testing

/// `vkprobe report` on a sweep run, opened in a real headless browser (Debian's chromium): it
/// renders, with no console message, and the screenshot is not blank.
@Suite struct ReportTests {
    static let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// Screenshot of `page` and the browser's console lines.
    func open(_ page: URL, screenshot: URL) throws -> (status: Int32, console: [String]) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.chromium!)
        p.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1400,1800",
                       "--enable-logging=stderr", "--v=0", "--screenshot=\(screenshot.path)", page.absoluteString]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, text.split(separator: "\n").map(String.init).filter { $0.contains(":CONSOLE") || $0.contains("Uncaught") })
    }

    @Test func reportOfASweepRendersInABrowser() throws {
        let dir = try temporaryDirectory("report")
        #expect(try runVkprobe(["synth", "--output", dir.path, "--train-samples", "512", "--val-samples", "128", "--tokens", "16", "--dim", "32"]).status == 0)
        let run = dir.appendingPathComponent("run")
        let train = try runVkprobe(["train", "--train-tokens", dir.appendingPathComponent("train.safetensors").path,
                                    "--val-tokens", dir.appendingPathComponent("val.safetensors").path, "--heads", "ep,lp_gap",
                                    "--ep-queries", "4", "--lr", "0.3,1,3", "--epochs", "2", "--warmup-epochs", "1", "--batch-size", "64",
                                    "--output", run.path])
        #expect(train.status == 0, "\(train.stderr)")
        let report = try runVkprobe(["report", run.path, "--output", dir.appendingPathComponent("report").path])
        #expect(report.status == 0, "\(report.stderr)")
        let page = dir.appendingPathComponent("report/index.html")
        let html = try String(contentsOf: page, encoding: .utf8)
        #expect(html.components(separatedBy: "<tr><td>").count - 1 == 6, "one row per probe")
        for svg in ["accuracy-vs-parameters.svg", "accuracy-vs-throughput.svg", "curves.svg", "sweep.svg"] {
            #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("report/\(svg)").path), "\(svg)")
        }
        guard Self.chromium != nil else {
            // `make test` installs chromium and sets VKPROBE_REQUIRE_BROWSER: there the browser is a must.
            #expect(ProcessInfo.processInfo.environment["VKPROBE_REQUIRE_BROWSER"] != "1", "chromium is required (apt-get install chromium)")
            return
        }
        let shot = dir.appendingPathComponent("report.png")
        let opened = try open(page, screenshot: shot)
        #expect(opened.status == 0)
        #expect(opened.console.isEmpty, "console: \(opened.console)")
        let image = try ImageDecoder.decode(try Data(contentsOf: shot), name: shot.path)
        #expect(image.width == 1400 && image.height == 1800)
        let distinct = Set(stride(from: 0, to: image.pixels.count, by: 3 * 97).map { image.pixels[$0] })
        #expect(distinct.count > 8, "the screenshot is not blank")
        // The console check catches a page that errs.
        let bad = dir.appendingPathComponent("bad.html")
        try "<html><body><script>console.error('deliberate'); missing();</script></body></html>".write(to: bad, atomically: true, encoding: .utf8)
        #expect(try open(bad, screenshot: dir.appendingPathComponent("bad.png")).console.count == 2)
    }
}
