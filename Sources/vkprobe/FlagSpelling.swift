/// Upstream's scripts spell flags with underscores (`--batch_size`, `--warmup_epochs`,
/// `--log_dir`); vkprobe's are hyphenated. Every flag of every subcommand takes either spelling,
/// the same way: `--a_b` (and `--a_b=v`) is read as `--a-b`. Values are left alone, as is
/// everything after `--`, and `linprobe`'s arguments, which are upstream's own command line.
enum FlagSpelling {
    static func normalized(_ arguments: [String]) -> [String] {
        guard arguments.first != "linprobe" else { return arguments }
        var out: [String] = []
        var rest = false
        for a in arguments {
            if rest || !a.hasPrefix("--") || a == "--" { rest = rest || a == "--"; out.append(a); continue }
            let name = a.prefix { $0 != "=" }
            out.append(name.replacingOccurrences(of: "_", with: "-") + a.dropFirst(name.count))
        }
        return out
    }
}
