import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What changes the machine code a CPU Vulkan driver generates while leaving the SPIR-V, the
/// specialization constants and the driver's own cache keys alone: lavapipe's vector width
/// (`LP_NATIVE_VECTOR_WIDTH`, which is also its subgroup size), its code-generation switches
/// (`GALLIVM_PERF`, `LP_PERF`) and the CPU's features. Mesa 22.3's on-disk shader cache keys by
/// none of them: code built at 4 lanes was served to a later 8-lane run (and its row kernels
/// summed half a row). So every cache this process uses is separated by this key:
/// Mesa's, through `MESA_SHADER_CACHE_DIR` set before the first instance (`guardMesaCache`), and
/// ours (`PipelineCache`'s file name).
public enum ShaderCacheKey {
    /// The switches that change generated code, as set (`LP_NATIVE_VECTOR_WIDTH=auto` when unset).
    public static let settings: [String] = {
        let env = ProcessInfo.processInfo.environment
        return ["LP_NATIVE_VECTOR_WIDTH", "GALLIVM_PERF", "LP_PERF"].map { "\($0)=\(env[$0] ?? "auto")" }
    }()

    /// A short stable name: the width, then a hash of the switches and the CPU's feature flags.
    public static let current: String = {
        let env = ProcessInfo.processInfo.environment
        let width = env["LP_NATIVE_VECTOR_WIDTH"].flatMap { Int($0) }.map(String.init) ?? "auto"
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325   // FNV-1a: stable across runs and builds
        for byte in (settings.joined(separator: ";") + "|" + cpuFlagsLine()).utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        return "w\(width)-" + String(hash, radix: 16)
    }()

    /// The CPU's feature flags (Linux: /proc/cpuinfo's first `flags` line; empty elsewhere).
    public static func cpuFlagsLine() -> String {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "" }
        return text.split(separator: "\n").first { $0.hasPrefix("flags") }.map(String.init) ?? ""
    }

    /// Where Mesa's on-disk cache goes for this process: a folder per key under the one it would
    /// use (`MESA_SHADER_CACHE_DIR`, else `$XDG_CACHE_HOME/vkprobe`, else `~/.cache/vkprobe`); nil
    /// when Mesa's cache is disabled or no folder is known.
    public static func mesaCacheDirectory(environment env: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        if let off = env["MESA_SHADER_CACHE_DISABLE"], ["1", "true", "yes"].contains(off.lowercased()) { return nil }
        let base: String
        if let dir = env["MESA_SHADER_CACHE_DIR"], !dir.isEmpty, dir == env[inheritedMarker] {
            base = (dir as NSString).deletingLastPathComponent   // a vkprobe parent's keyed folder: its base
        } else if let dir = env["MESA_SHADER_CACHE_DIR"] ?? env["MESA_GLSL_CACHE_DIR"], !dir.isEmpty {
            base = dir
        } else if let xdg = env["XDG_CACHE_HOME"], !xdg.isEmpty {
            base = xdg + "/vkprobe"
        } else if let home = env["HOME"], !home.isEmpty {
            base = home + "/.cache/vkprobe"
        } else {
            return nil
        }
        return base + "/mesa-" + current
    }

    /// Points Mesa's shader cache at this key's folder, once per process, before any driver is
    /// asked for a device (`VulkanLibrary` opens the loader through here). When no folder can be
    /// made, Mesa's cache is disabled rather than shared across widths.
    public static let guardMesaCache: String? = {
        guard let dir = mesaCacheDirectory() else { return nil }
        if (try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)) == nil {
            setenv("MESA_SHADER_CACHE_DISABLE", "true", 1)
            return nil
        }
        setenv("MESA_SHADER_CACHE_DIR", dir, 1)
        setenv(inheritedMarker, dir, 1)
        return dir
    }()

    /// Names the folder this process chose, so that a child (a test spawning vkprobe at another
    /// width) keys from the same base rather than nesting under its parent's key.
    static let inheritedMarker = "VKPROBE_KEYED_MESA_CACHE_DIR"
}
