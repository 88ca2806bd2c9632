import Foundation
import PackagePlugin

/// Generates `BuildStamp.swift` before every build: the package version and the checkout's commit
/// (`git rev-parse`, `+dirty` with uncommitted changes; `unknown` outside a checkout), for
/// `vkprobe --version` and the `version` of summary.json. The file is rewritten only when its
/// text changes, so an unchanged commit recompiles nothing.
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
        return [.prebuildCommand(displayName: "Stamping the build with its commit", executable: URL(fileURLWithPath: "/bin/sh"),
                                 arguments: ["-c", script], outputFilesDirectory: context.pluginWorkDirectoryURL)]
    }
}
