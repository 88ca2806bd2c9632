import Foundation
import ProbeTestSupport
import Testing

/// Every subcommand's `--help` works (linprobe's too, whose other flags pass through unparsed),
/// and every flag a help text names is one of that command's (upstream's underscore spellings in
/// linprobe's and train's texts, and `--finetuning`, upstream's, are references to upstream).
@Suite struct HelpTextTests {
    static let commands = ["devices", "heads", "extract", "train", "linprobe", "knn", "maps", "report", "synth", "check-transforms", "demo", "smoke"]

    @Test(arguments: commands)
    func helpNamesOnlyItsOwnFlags(_ command: String) throws {
        let r = try runVkprobe([command, "--help"])
        #expect(r.status == 0 && r.stdout.contains("USAGE: vkprobe \(command)"), "\(command) --help: \(r.stderr)")
        let text = r.stdout
        func flags(_ pattern: String) -> Set<String> {
            let re = try! NSRegularExpression(pattern: pattern, options: [.anchorsMatchLines])
            return Set(re.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap { Range($0.range(at: 1), in: text).map { String(text[$0]) } })
        }
        // The OPTIONS lines: every name of an option (`--weights, --backbone <weights>`).
        var defined: Set<String> = []
        for line in text.split(separator: "\n") where line.range(of: #"^\s+(-\w, )?--"#, options: .regularExpression) != nil {
            let names = line.trimmingCharacters(in: .whitespaces).components(separatedBy: "  ")[0]
            for m in names.matches(of: #/--[a-z0-9-]+/#) { defined.insert(String(m.output)) }
        }
        let mentioned = flags(#"(--[a-z][a-z0-9_-]*[a-z0-9])"#).filter { !$0.contains("_") && $0 != "--finetuning" }
        // linprobe's text is about upstream's flags (they pass through to its translation, which
        // LinprobeTests holds to every command of upstream's README).
        let strangers = command == "linprobe" ? [] : mentioned.subtracting(defined)
        #expect(strangers.isEmpty, "vkprobe \(command) --help names flags it does not have: \(strangers.sorted())")
        // Each option states one default (a text saying "default: …" and a computed default gave two).
        for entry in text.components(separatedBy: "\n  -").dropFirst() {
            let n = entry.components(separatedBy: "default:").count - 1
            #expect(n <= 1, "vkprobe \(command) --help: an option with \(n) defaults: -\(entry)")
        }
    }

    /// One idea, one name: `heads` takes train's --ep-queries, --batch-size and --heads (its old
    /// --queries, --batch and --only still work, hidden), `demo` train's --weights (--backbone kept).
    @Test func theSameIdeaHasTheSameName() throws {
        let new = try runVkprobe(["heads", "--ep-queries", "8", "--heads", "ep", "--batch-size", "2", "--no-measure", "--json", "--dim", "64", "--tokens", "16"])
        let old = try runVkprobe(["heads", "--queries", "8", "--only", "ep", "--batch", "2", "--no-measure", "--json", "--dim", "64", "--tokens", "16"])
        #expect(new.status == 0 && new.stdout == old.stdout && new.stdout.contains("\"ep\""), "\(new.stdout) \(new.stderr) \(old.stderr)")
        // Upstream's underscore spellings, for every flag alike.
        let underscored = try runVkprobe(["heads", "--ep_queries", "8", "--heads", "ep", "--batch_size=2", "--no_measure", "--json", "--dim", "64", "--tokens", "16"])
        #expect(underscored.status == 0 && underscored.stdout == new.stdout, "\(underscored.stderr)")
        let help = try runVkprobe(["demo", "--help"]).stdout
        #expect(help.contains("--weights <weights>") && help.contains("--train-samples <train-samples>") && help.contains("--blocks <blocks>"), "\(help)")
        // train's one tap and several are one flag (--block kept); knn's temperatures are named.
        let train = try runVkprobe(["train", "--help"]).stdout
        #expect(train.contains("--blocks <blocks>") && !train.contains("--block "), "the former spelling is hidden: \(train)")
        #expect(try runVkprobe(["knn", "--help"]).stdout.contains("--temperatures <temperatures>"))
        #expect(try runVkprobe(["extract", "--help"]).stdout.contains("(default: 64)"), "extract's batch as train's --extract-batch-size")
    }

    /// The README's example commands use only flags their subcommand has (underscore spellings
    /// read as vkprobe reads them; linprobe's are upstream's own, checked by LinprobeTests).
    @Test func readmeExamplesUseFlagsThatExist() throws {
        let readme = try String(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("README.md"), encoding: .utf8)
        // Code blocks only; continuation lines joined.
        let blocks = readme.components(separatedBy: "```").enumerated().filter { $0.offset % 2 == 1 }.map(\.element)
        var commands: [String] = []
        for block in blocks {
            for line in block.replacingOccurrences(of: "\\\n", with: " ").split(separator: "\n") {
                guard let r = line.range(of: #"(^|\s)vkprobe [a-z-]+"#, options: .regularExpression) else { continue }
                commands.append(String(line[r]).trimmingCharacters(in: .whitespaces) + String(line[r.upperBound...]).components(separatedBy: "#")[0])
            }
        }
        #expect(commands.count >= 15, "README example commands found: \(commands.count)")
        var helps: [String: Set<String>] = [:]
        for command in commands {
            let words = command.split(separator: " ").map(String.init)
            let sub = words[1]
            guard Self.commands.contains(sub) else { Issue.record("README runs `vkprobe \(sub)`, which is no subcommand: \(command)"); continue }
            guard sub != "linprobe" else { continue }
            if helps[sub] == nil {
                let text = try runVkprobe([sub, "--help"]).stdout
                var defined: Set<String> = []
                for line in text.split(separator: "\n") where line.range(of: #"^\s+(-\w, )?--"#, options: .regularExpression) != nil {
                    for m in line.trimmingCharacters(in: .whitespaces).components(separatedBy: "  ")[0].matches(of: #/--[a-z0-9-]+/#) { defined.insert(String(m.output)) }
                }
                helps[sub] = defined
            }
            for w in words.dropFirst(2) {
                guard let m = w.firstMatch(of: #/^\[?(--[a-zA-Z0-9_-]+)/#) else { continue }
                let flag = String(m.output.1).replacingOccurrences(of: "_", with: "-")
                #expect(helps[sub]!.contains(flag), "README: `\(command)` uses \(m.output.1), which `vkprobe \(sub)` does not have")
            }
        }
    }

    /// `--dry-run` anywhere among upstream's flags, and `--help` after them.
    @Test func linprobeFindsItsOwnFlagsAnywhere() throws {
        let dry = try runVkprobe(["linprobe", "--model", "vit_base_patch16", "--finetune", "w.safetensors", "--dry-run"])
        #expect(dry.status == 0 && dry.stdout.contains("as: vkprobe train --model vit_base_patch16_224"), "\(dry.stdout) \(dry.stderr)")
        let help = try runVkprobe(["linprobe", "--model", "vit_base_patch16", "--help"])
        #expect(help.status == 0 && help.stdout.contains("USAGE: vkprobe linprobe"), "\(help.stderr)")
    }
}
