import Foundation
import PackagePlugin

/// Generates `BuildStamp.swift`: the package version and the checkout's commit (`git rev-parse`,
/// `+dirty` with uncommitted changes; `unknown` outside a checkout), for `vkprobe --version` and
/// the `version` of summary.json. The file is rewritten only when its text changes, so an
/// unchanged commit recompiles nothing.
///
/// A build command, not a prebuild command: SwiftPM keeps its build plan between builds whose
/// package graph did not change and then does not run prebuild commands again — the stamp stayed
/// at an old commit. The command's inputs are git's HEAD, its reflog and index (a commit, checkout
/// or reset changes them) and every source file of the package (an edit may make it dirty).
@main
struct BuildStamp: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let out = context.pluginWorkDirectoryURL.appending(path: "BuildStamp.swift")
        let package = context.package.directoryURL.path()
        let script = """
            c=$(git -C '\(package)' rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
            if [ "$c" != unknown ] && [ -n "$(git -C '\(package)' status --porcelain --untracked-files=no 2>/dev/null)" ]; then c="$c+dirty"; fi
            t=$(mktemp)
            printf '/// Written by the BuildStamp plugin.\\npublic enum BuildStamp {\\n    public static let version = "0.1.0"\\n    public static let commit = "%s"\\n}\\n' "$c" > "$t"
            if cmp -s "$t" '\(out.path())'; then rm -f "$t"; else mv "$t" '\(out.path())'; fi
            """
        let git = context.package.directoryURL.appending(path: ".git")
        let gitFiles = ["HEAD", "index", "logs/HEAD"].map { git.appending(path: $0) }.filter { FileManager.default.fileExists(atPath: $0.path()) }
        let sources = context.package.targets.compactMap { $0.sourceModule }.flatMap { $0.sourceFiles.map(\.url) }
        return [.buildCommand(displayName: "Stamping the build with its commit", executable: URL(fileURLWithPath: "/bin/sh"),
                              arguments: ["-c", script], inputFiles: gitFiles + sources, outputFiles: [out])]
    }
}
