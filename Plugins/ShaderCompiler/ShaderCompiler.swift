import Foundation
import PackagePlugin

/// Compiles the package's top-level `Shaders/*.comp` into SPIR-V resources of the target that
/// applies it, and generates `ShaderInterfaces.swift` (the typed Swift face of every kernel) with
/// the ShaderInterfaceGenerator tool. Every `#include`d `.glsl` header (and `variants.txt`) is an
/// input of every command, so editing a header rebuilds the kernels. Warnings are errors.
///
/// `Shaders/variants.txt` lists extra builds of one source with other `#define`s, one per line:
/// `output_name source.comp -DNAME=VALUE ...`. Sources are also built once under their own name
/// unless the first token of a line is `!source.comp` (variants only).
@main
struct ShaderCompiler: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let shaderDir = context.package.directoryURL.appending(path: "Shaders")
        let files = try FileManager.default.contentsOfDirectory(atPath: shaderDir.path()).sorted()
        let sources = files.filter { $0.hasSuffix(".comp") }
        let headers = files.filter { $0.hasSuffix(".glsl") }.map { shaderDir.appending(path: $0) }
        let variantsFile = shaderDir.appending(path: "variants.txt")
        var inputs = headers
        var builds: [(output: String, source: String, defines: [String])] = []
        var variantOnly = Set<String>()
        if FileManager.default.fileExists(atPath: variantsFile.path()) {
            inputs.append(variantsFile)
            let text = try String(contentsOf: variantsFile, encoding: .utf8)
            for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
                let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
                if words.isEmpty { continue }
                if words.count == 1, words[0].hasPrefix("!") {
                    variantOnly.insert(String(words[0].dropFirst()))
                    continue
                }
                guard words.count >= 2, sources.contains(words[1]) else {
                    throw ShaderPluginError("Shaders/variants.txt:\(number + 1): expected `output source.comp -DDEFINES...` naming an existing .comp file, got `\(line)`")
                }
                builds.append((words[0], words[1], Array(words.dropFirst(2))))
            }
        }
        for source in sources where !variantOnly.contains(source) {
            builds.append((String(source.dropLast(".comp".count)), source, []))
        }
        // Cooperative-matrix kernels (Shaders/coopmat/): typed always, compiled only with the
        // pinned glslangValidator (Debian's glslc cannot).
        let coopDir = shaderDir.appending(path: "coopmat")
        var coopBuilds: [(output: String, source: String, defines: [String])] = []
        let coopVariants = coopDir.appending(path: "variants.txt")
        if FileManager.default.fileExists(atPath: coopVariants.path()) {
            inputs.append(coopVariants)
            for raw in try String(contentsOf: coopVariants, encoding: .utf8).split(separator: "\n") {
                let words = (raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
                    .split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
                guard words.count >= 2 else { continue }
                coopBuilds.append((words[0], "coopmat/" + words[1], Array(words.dropFirst(2))))
            }
        }
        let compiler = try findCompiler()
        let outDir = context.pluginWorkDirectoryURL.appending(path: "spirv")
        let interfaces = context.pluginWorkDirectoryURL.appending(path: "ShaderInterfaces.swift")
        var generatorArgs = ["--glslc", compiler.path(), "--shaders", shaderDir.path(), "--output", interfaces.path()]
        for b in builds + coopBuilds { generatorArgs += ["--build", "\(b.output)=\(b.source)" + (b.defines.isEmpty ? "" : ":" + b.defines.joined(separator: ","))] }
        let generate = Command.buildCommand(displayName: "Generating ShaderInterfaces.swift",
                                            executable: try context.tool(named: "ShaderInterfaceGenerator").url,
                                            arguments: generatorArgs,
                                            inputFiles: sources.map { shaderDir.appending(path: $0) } + Set(coopBuilds.map(\.source)).map { shaderDir.appending(path: $0) } + inputs,
                                            outputFiles: [interfaces])
        var seen = Set<String>()
        let compile = try builds.map { build in
            guard seen.insert(build.output).inserted else {
                throw ShaderPluginError("Shaders: two builds produce \(build.output).spv; rename one in variants.txt")
            }
            let source = shaderDir.appending(path: build.source)
            let output = outDir.appending(path: build.output + ".spv")
            let args = ["--target-env=vulkan1.2", "-std=460", "-O", "-Werror", "-I", shaderDir.path()]
                + build.defines + [source.path(), "-o", output.path()]
            return Command.buildCommand(displayName: "Compiling shader \(build.output).spv",
                                 executable: compiler, arguments: args,
                                 inputFiles: [source] + inputs, outputFiles: [output])
        }
        var coopCompile: [Command] = []
        if let glslang = findCoopmatCompiler(context) {
            coopCompile = coopBuilds.map { build in
                let source = shaderDir.appending(path: build.source)
                let output = outDir.appending(path: build.output + ".spv")
                return Command.buildCommand(displayName: "Compiling shader \(build.output).spv (glslangValidator 13.1.1)",
                                            executable: glslang,
                                            arguments: ["-V", "--target-env", "vulkan1.3", "-Os", "-I" + shaderDir.path()] + build.defines
                                                + [source.path(), "-o", output.path()],
                                            inputFiles: [source] + inputs, outputFiles: [output])
            }
        }
        return [generate] + compile + coopCompile
    }

    /// The pinned glslangValidator of `make shader-tools` (`.venv-shaders`), or $VKPROBE_GLSLANG.
    private func findCoopmatCompiler(_ context: PluginContext) -> URL? {
        let env = ProcessInfo.processInfo.environment["VKPROBE_GLSLANG"]
        if env == "" { return nil }
        let candidates = [env, context.package.directoryURL.appending(path: ".venv-shaders/bin/glslangValidator").path()].compactMap { $0 }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }.map { URL(fileURLWithPath: $0) }
    }

    /// `context.tool(named:)` does not search PATH for build-tool plugins, so look ourselves.
    private func findCompiler() throws -> URL {
        var candidates = ["/usr/bin/glslc", "/usr/local/bin/glslc"]
        if let path = ProcessInfo.processInfo.environment["PATH"] {
            candidates += path.split(separator: ":").map { "\($0)/glslc" }
        }
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate) {
            return URL(fileURLWithPath: candidate)
        }
        throw ShaderPluginError("glslc not found: install it with `sudo apt-get install glslc` (or run `make deps`)")
    }
}

struct ShaderPluginError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}
