import ArgumentParser
import Foundation
import ProbeData

struct CheckTransformsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-transforms",
        abstract: "Check images against PIL and torchvision: decoded pixels exactly PIL's, the eval transform within one 8-bit level, PIL's refusals refused.",
        discussion: """
        GOLDEN is a transform golden written by Bench/tools/make_transform_goldens.py; for a folder of
        yours, Bench/tools/check_decoding.sh DIR writes its golden and runs this.
        Exit status 1 when any file differs.
        """)
    @Argument(help: "transform_<tag>.safetensors files.") var goldens: [String]
    /// --quiet: only the files that differ and the totals.
    @OptionGroup var logging: LoggingOptions
    var quiet: Bool { logging.quiet }

    func run() throws {
        try reportingErrors {
            var total = 0, same = 0, refused = 0, differ = 0
            for g in goldens {
                for row in try TransformGoldenCheck.run(golden: g) {
                    total += 1
                    if case .bothRefused = row.outcome { refused += 1 } else if row.ok { same += 1 } else { differ += 1 }
                    if !quiet || !row.ok { print(row.line) }
                }
            }
            print("\(total) files: \(same) decode and transform as PIL and torchvision, \(refused) refused as PIL refuses them, \(differ) differ")
            if differ > 0 { throw ExitCode(1) }
        }
    }
}
