import ArgumentParser
import Foundation
import SafeTensors

/// Runs tools/convert_checkpoint.py for `linprobe` (upstream's `.pth` checkpoints: its README's
/// `--finetune …/checkpoint-799.pth`, `--eval --resume checkpoint-best.pth`). VulkanProbe never
/// unpickles; the converter needs a Python with torch (`VKPROBE_PYTHON`, else `python3`). A file
/// converted before (newer than its source) is reused.
enum CheckpointConverter {
    /// The converter script: `VKPROBE_TOOLS`, else `tools/` of the checkout the binary was built in
    /// (`.build/<triple>/<config>/vkprobe` three levels below), else `tools/` beside the binary or in
    /// the working directory.
    static var script: String? {
        let env = ProcessInfo.processInfo.environment
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        var candidates: [URL] = []
        if let t = env["VKPROBE_TOOLS"] { candidates.append(URL(fileURLWithPath: t)) }
        candidates += [exe.appendingPathComponent("../../../tools"), exe.appendingPathComponent("../../tools"), exe.appendingPathComponent("tools"),
                       URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("tools")]
        return candidates.map { $0.appendingPathComponent("convert_checkpoint.py").standardizedFileURL.path }
            .first { FileManager.default.fileExists(atPath: $0) }
    }

    static var python: String { ProcessInfo.processInfo.environment["VKPROBE_PYTHON"] ?? "python3" }

    static func command(_ c: LinprobeCommand.Conversion) -> [String] {
        [python, script ?? "tools/convert_checkpoint.py", c.source, c.target] + (c.key.map { ["--key", $0] } ?? [])
    }

    static func run(_ c: LinprobeCommand.Conversion) throws {
        let fm = FileManager.default
        guard fm.fileExists(atPath: c.source) else { throw ValidationError("\(c.source): no such checkpoint") }
        if let t = (try? fm.attributesOfItem(atPath: c.target))?[.modificationDate] as? Date,
           let s = (try? fm.attributesOfItem(atPath: c.source))?[.modificationDate] as? Date, t >= s,
           (try? SafeTensorsFile(path: c.target))?.metadata["source"] == c.source {
            say("note: \(c.target) is \(c.source) converted before; reused")
            return
        }
        guard script != nil else {
            throw ValidationError("\(c.source): a PyTorch pickle, and tools/convert_checkpoint.py was not found (set VKPROBE_TOOLS to the folder holding it); convert it by hand: python3 tools/convert_checkpoint.py \(c.source) model.safetensors, and pass that file")
        }
        try fm.createDirectory(at: URL(fileURLWithPath: c.target).deletingLastPathComponent(), withIntermediateDirectories: true)
        let args = command(c)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = args
        let err = Pipe()
        p.standardError = err
        do { try p.run() } catch {
            throw ValidationError("\(c.source): could not start \(args[0]) to convert it (\(error)); set VKPROBE_PYTHON to a Python with torch")
        }
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard p.terminationStatus == 0, fm.fileExists(atPath: c.target) else {
            try? fm.removeItem(atPath: c.target)
            let why = message.split(separator: "\n").last.map(String.init) ?? "exit status \(p.terminationStatus)"
            throw ValidationError("\(c.source): the conversion failed: \(why)\n(the converter reads pickles with torch: set VKPROBE_PYTHON to a Python that has it, or convert by hand: \(args.joined(separator: " ")))")
        }
    }
}
