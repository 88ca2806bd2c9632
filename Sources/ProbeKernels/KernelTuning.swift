/// The kernel-choice knobs benchmarks turn (each default is the measured best, see
/// `KernelVariants`): a value parsed once at the edge — `vkprobe` and `vkprobe-bench` read them
/// from the environment at start (`KernelTuning(environment:)`) — and passed to `KernelContext`.
/// The README lists them. Below the command line nothing reads them from the environment.
public struct KernelTuning: Sendable, Equatable {
    /// `VKPROBE_GEMM_STORE4=0`: the CPU GEMM stores one element at a time.
    public var gemmStore4 = true
    /// `VKPROBE_TEXEL4=0`: sums over an axis read one element per texel.
    public var texel4 = true
    /// `VKPROBE_GEMM_TEXEL=0`: no texel twins (storage-buffer kernels throughout).
    public var texel = true
    /// `VKPROBE_CPU_GEMM=lanes,rows,cols`: the CPU GEMM's tile (each 1…64).
    public var cpuGEMM: [UInt32]?
    /// `VKPROBE_CPU_GEMM_K4=rows,cols`: the tile of its float4-along-K path (each 1…64).
    public var cpuGEMMAlongK: [UInt32]?
    /// `VKPROBE_ELEMENTS_PER_INVOCATION=N`: elementwise kernels' grid-stride step.
    public var elementsPerInvocation: Int?
    /// `VKPROBE_ROWS_PER_WORKGROUP=N`: rows each workgroup of a row kernel walks.
    public var rowsPerWorkgroup: Int?
    /// `VKPROBE_GEMM_UNROLL=0`: single-step K loops (and packing as before).
    public var gemmUnrolled = true
    /// `VKPROBE_GEMM_BK=0`: the CPU GEMM's B-along-K path off.
    public var gemmBK = true
    /// `VKPROBE_GEMM_PACK=0|N`: never pack operands along K (0), or pack from N multiply-adds per moved element.
    public var gemmPack: Int?
    /// `VKPROBE_GEMM_SWAP=0|1`: the CPU GEMM's transposed form forced off or on for every shape.
    public var gemmSwap: Bool?
    /// `VKPROBE_COOPMAT=0|1`: the cooperative-matrix GEMM forbidden, or asked for (warning why not).
    public var coopmat: Bool?
    /// `VKPROBE_GEMM_KTEXELS=N`: float4 texels per accumulator visit on the float4-along-K path.
    public var gemmKTexels: UInt32?

    public init() {}

    /// The knobs set in `environment` (values that do not parse are ignored, as unset).
    public init(environment env: [String: String]) {
        gemmStore4 = env["VKPROBE_GEMM_STORE4"] != "0"
        texel4 = env["VKPROBE_TEXEL4"] != "0"
        texel = env["VKPROBE_GEMM_TEXEL"] != "0"
        // A tile: `count` comma-separated sizes, each 1…64.
        func tile(_ key: String, _ count: Int) -> [UInt32]? {
            guard let v = env[key]?.split(separator: ",").compactMap({ UInt32($0) }), v.count == count, v.allSatisfy({ (1...64).contains($0) }) else { return nil }
            return v
        }
        cpuGEMM = tile("VKPROBE_CPU_GEMM", 3)
        cpuGEMMAlongK = tile("VKPROBE_CPU_GEMM_K4", 2)
        elementsPerInvocation = env["VKPROBE_ELEMENTS_PER_INVOCATION"].flatMap { Int($0) }.flatMap { $0 > 0 ? $0 : nil }
        rowsPerWorkgroup = env["VKPROBE_ROWS_PER_WORKGROUP"].flatMap { Int($0) }.flatMap { $0 > 0 ? $0 : nil }
        gemmUnrolled = env["VKPROBE_GEMM_UNROLL"] != "0"
        gemmBK = env["VKPROBE_GEMM_BK"] != "0"
        gemmPack = env["VKPROBE_GEMM_PACK"].flatMap { Int($0) }.flatMap { $0 >= 0 ? $0 : nil }
        if let v = env["VKPROBE_GEMM_SWAP"], v == "0" || v == "1" { gemmSwap = v == "1" }
        gemmKTexels = env["VKPROBE_GEMM_KTEXELS"].flatMap { UInt32($0) }.flatMap { (1...8).contains($0) ? $0 : nil }
        if let v = env["VKPROBE_COOPMAT"], v == "0" || v == "1" { coopmat = v == "1" }
    }
}
