import ArgumentParser
import Foundation
import ProbeTraining

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "One self-contained HTML page (and SVG figures) over training runs: accuracy, parameters, throughput, curves, sweep grid, EP maps.")

    @Argument(help: "Run directories (vkprobe train --output).") var runs: [String]
    @Option(help: "Output directory (default: the first run's report/).") var output: String?
    @OptionGroup var logging: LoggingOptions

    func run() throws {
        try reportingErrors {
            guard let first = runs.first else { throw TrainingError("name at least one run directory") }
            if let output { try Destination.folder(output) }
            let report = try RunReport(runs: runs.map { URL(fileURLWithPath: $0) })
            let dir = URL(fileURLWithPath: output ?? URL(fileURLWithPath: first).appendingPathComponent("report").path)
            let page = try report.write(to: dir)
            print("wrote \(page.path) (\(report.probes.count) probes from \(report.runs.count) run\(report.runs.count == 1 ? "" : "s")) and its SVG figures in \(dir.path)")
        }
    }
}
