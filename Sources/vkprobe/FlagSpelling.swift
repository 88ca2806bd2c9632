/// How flags may be spelt, in one place.
///
/// Upstream's scripts spell flags with underscores (`--batch_size`, `--warmup_epochs`,
/// `--log_dir`); vkprobe's are hyphenated. Every flag of every subcommand takes either spelling,
/// the same way: `--a_b` (and `--a_b=v`) is read as `--a-b`. Values are left alone, as is
/// everything after `--`, and `linprobe`'s arguments, which are upstream's own command line.
///
/// Flags renamed so that one idea has one name in every subcommand keep their first spelling as
/// a hidden alias (read, not shown in --help): `formerNames`.
enum FlagSpelling {
    /// Per subcommand: a former spelling → today's.
    static let formerNames: [String: [String: String]] = [
        "heads": ["--queries": "--ep-queries", "--batch": "--batch-size", "--only": "--heads"],
        "demo": ["--backbone": "--weights", "--train-images": "--train-samples", "--val-images": "--val-samples", "--block": "--blocks"],
        "train": ["--block": "--blocks"],
        "knn": ["--T": "--temperatures"],
    ]

    static func normalized(_ arguments: [String]) -> [String] {
        guard let command = arguments.first, command != "linprobe" else { return arguments }
        let renamed = formerNames[command] ?? [:]
        var out: [String] = []
        var rest = false
        for a in arguments {
            if rest || !a.hasPrefix("--") || a == "--" { rest = rest || a == "--"; out.append(a); continue }
            let given = String(a.prefix { $0 != "=" })
            let name = renamed[given] ?? given.replacingOccurrences(of: "_", with: "-")
            out.append(name + a.dropFirst(given.count))
        }
        return out
    }
}
