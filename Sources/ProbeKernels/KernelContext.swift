import Foundation
import Logging
import ProbeShaders
import VulkanCompute

/// Where ops are recorded: a device, a command stream, and the kernel variants chosen for the
/// device. Ops append dispatches; nothing runs until `finish()` (or a download, which finishes).
public final class KernelContext {
    public let device: ComputeDevice
    public let stream: CommandStream
    public let variants: KernelVariants
    /// The cooperative-matrix GEMM for f16-input GEMMs: chosen from the device and the build,
    /// then checked against the tiled kernel at first use (`CooperativeMatrixGEMM`).
    public internal(set) var coopmat: CoopmatChoice
    var coopmatChecked = false
    /// Data-parallel training: BatchNorm statistics summed over the group (nil: this process's batch).
    public var batchReducer: BatchStatisticsReducer?
    /// Ops whose operands were split to fit a binding, said once each per process at debug level
    /// (the level is read once here, so the ops' path pays nothing when it is off).
    private let sayingSplits = kernelLog.logLevel <= .debug
    private static let splitsLock = NSLock()
    nonisolated(unsafe) private static var splitsSaid = Set<String>()

    /// `tuning`: the benchmarks' knobs (defaults: the measured best); `variants`, when given,
    /// replaces the choice made from the device and `tuning`.
    public init(device: ComputeDevice, variants: KernelVariants? = nil, maxCommandsPerSubmit: Int = 256, tuning: KernelTuning = KernelTuning()) throws {
        self.device = device
        self.stream = try CommandStream(device: device, maxCommandsPerSubmit: maxCommandsPerSubmit, timestampCapacity: 1024)
        let chosen = variants ?? KernelVariants(for: device.capabilities, tuning: tuning)
        if let problem = chosen.rowChoiceProblem { throw OpError.device("kernel variants for \(device.name)", problem) }
        self.variants = chosen
        coopmat = CooperativeMatrixGEMM.choose(device.capabilities, available: Set(BundledShaders.shared.names), setting: tuning.coopmat)
        kernelLog.debug("\(device.name): \(chosen.summary) (chosen by \(variants != nil ? "the caller" : ProcessInfo.processInfo.environment["VKPROBE_KERNELS"].map { "VKPROBE_KERNELS=\($0)" } ?? "the device's class"))")
        if coopmat.warn { kernelLog.warning("\(coopmat)") } else { kernelLog.debug("\(coopmat)") }
    }

    /// Replaces the choice (tests fake a capable device this way).
    func overrideCoopmat(_ choice: CoopmatChoice, checked: Bool) { coopmat = choice; coopmatChecked = checked }

    /// Submits everything recorded and waits.
    public func finish() throws { try stream.finish() }

    // MARK: Tensors

    /// A new, uninitialised contiguous tensor.
    public func empty(_ shape: [Int], dtype: DType = .f32) throws -> Tensor {
        let n = shape.reduce(1, *)
        guard shape.allSatisfy({ $0 >= 0 }) else { throw OpError.shape("empty", "negative dimension in \(shape)") }
        return Tensor(buffer: try device.makeBuffer(bytes: max(4, n * dtype.size)), shape: shape, dtype: dtype)
    }

    /// A new tensor of `t`'s shape laid out as `t` is when `t` is a permutation of a dense layout
    /// (a head split's view): a gradient written in it reads back through the inverse permutes
    /// without a copy. Contiguous otherwise.
    public func empty(like t: Tensor, dtype: DType? = nil) throws -> Tensor {
        var expected = 1
        for axis in t.shape.indices.filter({ t.shape[$0] > 1 }).sorted(by: { t.strides[$0] < t.strides[$1] }) {
            guard t.strides[axis] == expected else { return try empty(t.shape, dtype: dtype ?? t.dtype) }
            expected *= t.shape[axis]
        }
        let dense = try empty([t.count], dtype: dtype ?? t.dtype)
        return Tensor(buffer: dense.buffer, shape: t.shape, strides: t.strides, dtype: dense.dtype)
    }

    public func tensor(_ values: [Float], _ shape: [Int]) throws -> Tensor {
        guard values.count == shape.reduce(1, *) else { throw OpError.shape("tensor", "\(values.count) values for shape \(shape)") }
        let t = try empty(shape)
        try values.withUnsafeBytes { try device.upload($0, to: t.buffer, offset: 0) }
        return t
    }

    public func tensor(_ values: [Int32], _ shape: [Int]) throws -> Tensor {
        guard values.count == shape.reduce(1, *) else { throw OpError.shape("tensor", "\(values.count) values for shape \(shape)") }
        let t = try empty(shape, dtype: .i32)
        try values.withUnsafeBytes { try device.upload($0, to: t.buffer, offset: 0) }
        return t
    }

    /// An f16 tensor from Float values (rounded to nearest).
    public func tensorF16(_ values: [Float], _ shape: [Int]) throws -> Tensor {
        guard values.count == shape.reduce(1, *) else { throw OpError.shape("tensor", "\(values.count) values for shape \(shape)") }
        let t = try empty(shape, dtype: .f16)
        let halves = values.map { Float16($0).bitPattern }
        try halves.withUnsafeBytes { try device.upload($0, to: t.buffer, offset: 0) }
        return t
    }

    /// Finishes pending work and reads a tensor back as Float (f16, bf16 and i32 converted).
    public func read(_ t: Tensor) throws -> [Float] {
        try finish()
        switch t.dtype {
        case .f32: return try gather(t, as: Float.self)
        case .f16: return try gather(t, as: UInt16.self).map { Float(Float16(bitPattern: $0)) }
        case .bf16: return try gather(t, as: UInt16.self).map { Float(bitPattern: UInt32($0) << 16) }
        case .i32: return try gather(t, as: Int32.self).map { Float($0) }
        }
    }

    public func readInt32(_ t: Tensor) throws -> [Int32] {
        guard t.dtype == .i32 else { throw OpError.dtype("readInt32", "\(t) is not i32") }
        try finish()
        return try gather(t, as: Int32.self)
    }

    /// Downloads the span of `t` and gathers its elements in row-major order on the host.
    private func gather<T>(_ t: Tensor, as: T.Type) throws -> [T] {
        let span = t.span
        guard span > 0 else { return [] }
        var raw = [T](unsafeUninitializedCapacity: span) { _, n in n = span }
        try raw.withUnsafeMutableBytes { try device.download(t.buffer, offset: t.offset * t.dtype.size, into: $0) }
        if t.isContiguous { return raw }
        var out: [T] = []
        out.reserveCapacity(t.count)
        var index = [Int](repeating: 0, count: t.rank)
        for _ in 0..<t.count {
            out.append(raw[zip(index, t.strides).map(*).reduce(0, +)])
            var d = t.rank - 1
            while d >= 0 { index[d] += 1; if index[d] < t.shape[d] { break }; index[d] = 0; d -= 1 }
        }
        return out
    }

    // MARK: Dispatch helpers

    /// The pipeline of a typed kernel (generated from its GLSL; see ProbeShaders).
    func kernel<K: ShaderKernel>(_ type: K.Type, _ variant: K.Variant, _ spec: K.Spec) throws -> TypedKernel<K> {
        try device.pipelines.kernel(type, variant, spec)
    }

    /// A binding covering elements [start, start + count) of `t`'s buffer, starting at an aligned
    /// byte offset; returns the binding and the element offset of `start` inside it.
    func window(_ t: Tensor, start: Int, count: Int, access: Access, op: String) throws -> (Binding, Int) {
        let es = t.dtype.size
        let align = device.capabilities.minStorageBufferOffsetAlignment
        let startByte = start * es
        let base = startByte / align * align
        let end = min(t.buffer.size, max(startByte + max(count, 1) * es, base + 4))
        let size = (end - base + 3) / 4 * 4
        let limit = device.capabilities.maxStorageBufferRange
        guard size <= limit else {
            throw VulkanError.bindingTooLarge(bytes: size, limit: limit, what: "\(op) operand \(t)")
        }
        let range = try t.buffer.range(offset: base, size: min(size, t.buffer.size - base))
        return (Binding(range, access), (startByte - base) / es)
    }

    /// Binds the whole span of `t`.
    func bind(_ t: Tensor, _ access: Access, op: String) throws -> (Binding, Int) {
        try window(t, start: t.offset, count: t.span, access: access, op: op)
    }

    /// Binds `t` when given, else a placeholder (a binding the kernel does not touch).
    func bind(_ t: Tensor?, _ access: Access, op: String, orPlaceholder other: Binding) throws -> (Binding, Int) {
        guard let t else { return (Binding(other.range, access == .write ? .read : access), 0) }
        return try bind(t, access, op: op)
    }

    /// A small scratch buffer bound where a kernel writes an output nobody asked for (never alias
    /// a real output).
    func scratchBinding() throws -> Binding { Binding(try device.makeBuffer(bytes: 16).whole, .write) }

    // MARK: Operands beyond maxStorageBufferRange (one mechanism for every op)

    /// Whether `t`'s window fits one binding (room left to align its start down).
    func fitsBinding(_ t: Tensor) -> Bool {
        t.span * t.dtype.size + device.capabilities.minStorageBufferOffsetAlignment <= device.capabilities.maxStorageBufferRange
    }

    /// One axis of an op's iteration space: its size, and the axis it is in each operand (nil where
    /// the operand does not vary along it and is passed whole).
    struct SplitAxis {
        var size: Int
        var axes: [Int?]
    }

    /// Calls `body` on pieces of an op's iteration space small enough for every operand to fit a
    /// binding. While an operand is too large, the first axis in `axes` (priority order) along
    /// which that operand varies and which still has more than one entry is halved, and every
    /// operand that has the axis is sliced. `body` gets the sliced operands and each axis's range
    /// (an op that reduces along an axis accumulates over its pieces: ranges tell the first and
    /// last). Without a splittable axis, the error names the op, the operand and the limit.
    func forEachPiece(_ op: String, _ operands: [Tensor], _ axes: [SplitAxis],
                      _ body: (_ pieces: [Tensor], _ ranges: [Range<Int>]) throws -> Void) throws {
        if stream.profiling {
            stream.opLabel = op + " " + operands.map { $0.shape.map(String.init).joined(separator: "×") + ($0.dtype == .f32 ? "" : " \($0.dtype)") }
                .joined(separator: ", ")
            stream.opFlops = 0
        }
        if sayingSplits, let big = operands.first(where: { !fitsBinding($0) }) {
            let line = "\(op): operand \(big.shape) (\(big.span * big.dtype.size) bytes) exceeds \(device.name)'s binding limit of \(device.capabilities.maxStorageBufferRange) bytes: split into pieces that fit"
            if Self.splitsLock.withLock({ Self.splitsSaid.insert(line).inserted }) { kernelLog.debug("\(line)") }
        }
        try piece(op, operands, axes, axes.map { 0..<$0.size }, body)
    }

    private func piece(_ op: String, _ operands: [Tensor], _ axes: [SplitAxis], _ ranges: [Range<Int>],
                       _ body: ([Tensor], [Range<Int>]) throws -> Void) throws {
        guard let big = operands.indices.first(where: { !fitsBinding(operands[$0]) }) else {
            try body(operands, ranges)
            return
        }
        // Prefer the first axis whose halving shrinks the oversized operand (slicing columns of a
        // row-major matrix hardly does); otherwise the first axis it varies along at all.
        let candidates = axes.indices.filter { axes[$0].axes[big] != nil && ranges[$0].count > 1 }
        let shrinks = candidates.first { a in
            let t = operands[big], axis = axes[a].axes[big]!
            guard let half = try? t.slice(axis: axis, 0..<(ranges[a].count / 2)) else { return false }
            return half.span * 4 <= t.span * 3
        }
        guard let a = shrinks ?? candidates.first else {
            let t = operands[big]
            throw VulkanError.bindingTooLarge(bytes: t.span * t.dtype.size, limit: device.capabilities.maxStorageBufferRange,
                                              what: "\(op) operand \(t) (no axis left to split it along)")
        }
        let r = ranges[a], mid = r.lowerBound + r.count / 2
        for half in [r.lowerBound..<mid, mid..<r.upperBound] {
            let local = (half.lowerBound - r.lowerBound)..<(half.upperBound - r.lowerBound)
            let sliced = try operands.enumerated().map { i, t in try axes[a].axes[i].map { try t.slice(axis: $0, local) } ?? t }
            var next = ranges
            next[a] = half
            try piece(op, sliced, axes, next, body)
        }
    }

    // MARK: Checks

    func checkDevice(_ op: String, _ tensors: Tensor...) throws {
        for t in tensors where t.buffer.device !== device {
            throw OpError.device(op, "\(t) lives on '\(t.buffer.device.name)', the context on '\(device.name)'")
        }
    }

    func requireContiguous(_ op: String, _ tensors: Tensor...) throws {
        for t in tensors where !t.isContiguous {
            throw OpError.shape(op, "\(t) must be contiguous; copy it first with contiguous()")
        }
    }

    func requireF32(_ op: String, _ tensors: Tensor...) throws {
        for t in tensors where t.dtype != .f32 { throw OpError.dtype(op, "\(t) must be f32") }
    }

    func groups(_ n: Int, _ local: Int, cap: Int = 65535) -> Int { max(1, min((n + local - 1) / local, cap)) }
    /// Workgroups of a 1-D elementwise kernel over n elements.
    func elementGroups(_ n: Int) -> (Int, Int, Int) {
        (groups(n, Int(variants.elementwiseLocal) * variants.elementsPerInvocation), 1, 1)
    }
}

/// Kernel variants and tile sizes for one device, chosen from its capabilities.
public struct KernelVariants: Sendable {
    /// `cpu`: no shared memory, for lavapipe; `tiled`: shared-memory tiles, for GPUs. (A
    /// VK_KHR_cooperative_matrix variant needs a GLSL compiler newer than Debian 12's glslang 12.)
    public enum GEMMKind: String, Sendable { case cpu, tiled }
    public var gemm: GEMMKind
    /// CPU-shaped GEMM: lanes per workgroup, rows per lane (at most; fewer when M is small, so
    /// that no lane computes clamped duplicate rows), columns shared by the workgroup. 8 × 16 × 16
    /// measured best on lavapipe (AVX2): 41 GFLOP/s at 50176×768×768 against 27 for 8 × 8 × 16.
    public var cpuGEMM: (lanes: UInt32, rows: UInt32, cols: UInt32) = (8, 16, 16)
    /// The float4-along-K path's own tile (rows per lane, columns), where it differs from
    /// `cpuGEMM`'s: on Mesa 25's lavapipe 4 × 16 with one texel per visit (`gemmKTexels`), since
    /// its code keeps every updated accumulator in a temporary and blends them all back at the end
    /// of each K step, so that 16 × 16 accumulators spill twice (ViT-S/16 forward at batch 8 there:
    /// 2075–2250 → 1564–1695 ms). `VKPROBE_CPU_GEMM_K4=rows,cols` overrides.
    public var cpuGEMMAlongK: (rows: UInt32, cols: UInt32)? = nil
    /// The CPU-shaped GEMM's transposed form forced on or off for every shape (tests, benchmarks:
    /// `VKPROBE_GEMM_SWAP=0/1`); nil lets each dispatch choose (`CPUGEMMPlan.choose`).
    public var cpuGEMMSwapRule: Bool? = nil
    /// The CPU-shaped GEMM reads A and B as uniform texel buffers (`GemmCpuKernel` `.texel` builds): on
    /// lavapipe a texel fetch is a vector gather while a storage-buffer load inside a loop is a
    /// loop over the lanes (see the kernel). `VKPROBE_GEMM_TEXEL=0` turns it off (benchmarks).
    public var texelTwins = false
    /// The CPU-shaped GEMM stores C four elements at a time where its layout allows
    /// (`VKPROBE_GEMM_STORE4=0` turns it off: benchmarks, tests of the scalar stores).
    public var gemmStore4 = true
    /// Sums over an axis read four-element texels (RGBA32UI), four outputs per invocation, where
    /// the layout allows (texel path only): lavapipe fetches any texel through one call that
    /// gathers every lane's, so four elements cost about what one does there. (Binary ops read
    /// that way measured no faster, a broadcast add slower: their per-lane stores dominate.)
    /// `VKPROBE_TEXEL4=0` turns it off (benchmarks).
    public var texel4 = true
    /// CPU-shaped GEMM: operands not contiguous along K are first transposed (in 4×4 blocks) when
    /// the GEMM does at least this many multiply-adds per moved element, since the float4-along-K
    /// path is the fastest; nil never (GPUs; `VKPROBE_GEMM_PACK=0`, or `=N` for N, benchmarks).
    public var gemmPackRatio: Int? = nil
    /// The CPU-shaped GEMM's float4-along-N path (A float4 along K or M) and its B-along-K path
    /// take K four steps at a time, as fast as the float4-along-K one, so such operands are not
    /// packed (`VKPROBE_GEMM_UNROLL=0`: single-step loops and packing as before, benchmarks).
    public var gemmUnrolled = true
    /// The B-along-K path alone off (`VKPROBE_GEMM_BK=0`, benchmarks: A along M then reads B one
    /// element at a time, or the operands are packed).
    public var gemmBK = true
    /// Float4 texels of each operand row and column per accumulator visit on the CPU GEMM's
    /// float4-along-K path (the Linear forward): two measured best on lavapipe (eight multiply-adds
    /// between an accumulator's load and store; ViT-B/16's Linears 58 → 75 GFLOP/s, four slower
    /// in the whole forward). `VKPROBE_GEMM_KTEXELS` overrides.
    public var gemmKTexels: UInt32 = 1
    /// f32 attention through the fused kernel (GPUs) or GEMM → softmax → GEMM (CPU devices, where
    /// the fused kernel's scalar per-row dot products measured 3–7× slower).
    public var attentionFused = true
    /// Workgroup size of 1-D elementwise kernels.
    public var elementwiseLocal: UInt32
    /// Elements each invocation of them handles (the grid-stride loop), so workgroups = n /
    /// (local · this). lavapipe pays per workgroup: 16 measured best there (the heads' small
    /// elementwise ops 1.3× faster than 1; large ones unchanged, while a fixed cap of 64
    /// workgroups made a 38M-element GELU 1.3× slower). `VKPROBE_ELEMENTS_PER_INVOCATION` overrides.
    public var elementsPerInvocation: Int = 1
    /// Workgroup size of row kernels (softmax, norms, loss): a workgroup per row.
    public var rowLocal: UInt32
    /// Row kernels reduce with subgroup arithmetic (`_sg` variants); needs `rowLocal` to be exactly
    /// the device's (fixed) subgroup size: a workgroup of two subgroups would reduce each half
    /// alone (`KernelContext` refuses that choice; see `rowChoiceProblem`).
    public var rowSubgroup: Bool
    /// The device's subgroup size, and whether every dispatch gets exactly that many lanes (no
    /// varying size between pipelines, as Intel's 8/16/32 and AMD's 32/64 may vary).
    public let subgroupSize: Int
    public let fixedSubgroup: Bool
    /// The device's workgroup limit, against which `rowLocal` and `elementwiseLocal` are checked.
    public let maxWorkgroupInvocations: Int
    /// Rows each workgroup of a row kernel walks (its grid-stride loop). lavapipe pays per
    /// workgroup, and a BatchNorm over a small batch has many short rows (C channels of B values).
    /// `VKPROBE_ROWS_PER_WORKGROUP` overrides.
    public var rowsPerWorkgroup: Int = 1

    /// Which device class the kernels are chosen for: a CPU device's (lavapipe) or a GPU's.
    public enum Selection: String, Sendable { case cpu, gpu }
    /// The selection these variants were made for (every decision below follows it).
    public let selection: Selection
    public var cpuShaped: Bool { selection == .cpu }

    /// The selection for a device: its class, unless `VKPROBE_KERNELS=gpu|cpu` (or `selection`)
    /// says otherwise — `gpu` on lavapipe runs exactly the kernels a discrete GPU gets (tiled
    /// GEMMs, fused attention, 128-lane shared-memory row reductions, one element per
    /// invocation, no texel twins), so that every golden can run through them where no GPU is.
    public init(for caps: DeviceCapabilities, selection chosen: Selection? = nil, tuning: KernelTuning = KernelTuning()) {
        let requested = chosen ?? ProcessInfo.processInfo.environment["VKPROBE_KERNELS"].flatMap(Selection.init(rawValue:))
        selection = requested ?? (caps.isCPU ? .cpu : .gpu)
        var caps = caps
        caps.deviceType = selection == .cpu ? "cpu" : (caps.isCPU ? "discrete-gpu" : caps.deviceType)
        gemm = caps.isCPU ? .cpu : .tiled
        elementwiseLocal = UInt32(min(caps.isCPU ? 64 : 256, max(caps.maxComputeWorkGroupInvocations, 64)))
        elementsPerInvocation = caps.isCPU ? 16 : 1
        // lavapipe: one subgroup (8 lanes) per row beats 1 thread per row by 2.7× (softmax) and
        // shared-memory workgroups; GPUs: 128 threads and shared-memory reductions.
        subgroupSize = caps.subgroupSize
        fixedSubgroup = caps.minSubgroupSize == caps.maxSubgroupSize && caps.subgroupSize > 1
        maxWorkgroupInvocations = caps.maxComputeWorkGroupInvocations
        rowSubgroup = caps.isCPU && caps.subgroupArithmetic && fixedSubgroup
        // 128 is the Vulkan minimum of maxComputeWorkGroupInvocations: every device takes it.
        rowLocal = caps.isCPU ? UInt32(rowSubgroup ? caps.subgroupSize : 8) : 128
        attentionFused = !caps.isCPU
        gemmStore4 = tuning.gemmStore4
        texel4 = tuning.texel4
        texelTwins = caps.isCPU && caps.maxTexelBufferElements > 0 && tuning.texel
        if let v = tuning.cpuGEMM { cpuGEMM = (v[0], v[1], v[2]) }
        if let v = tuning.elementsPerInvocation { elementsPerInvocation = v }
        rowsPerWorkgroup = tuning.rowsPerWorkgroup ?? (caps.isCPU ? 8 : 1)
        gemmPackRatio = caps.isCPU ? 64 : nil
        gemmUnrolled = tuning.gemmUnrolled
        gemmBK = tuning.gemmBK
        // lavapipe's code generation changed between Mesa 22.3 (Debian 12, where these defaults
        // were measured) and 25.0 (Debian 13): see `cpuGEMMAlongK`. Versions between are unmeasured
        // and keep the 22.3 tuning.
        let mesa25 = caps.isCPU && caps.name.contains("llvmpipe") && (caps.mesaVersion.map { $0.major >= 25 } ?? false)
        gemmKTexels = tuning.gemmKTexels ?? (caps.isCPU ? (mesa25 ? 1 : 2) : 1)
        if let v = tuning.cpuGEMMAlongK { cpuGEMMAlongK = (v[0], v[1]) } else if mesa25 { cpuGEMMAlongK = (4, 16) }
        if let v = tuning.gemmPack { gemmPackRatio = v == 0 ? nil : v }
        cpuGEMMSwapRule = tuning.gemmSwap
    }

    /// Why this row-kernel choice would give wrong values or fail on its device (nil: sound).
    /// Subgroup reductions sum one subgroup: a row workgroup of any other size than the subgroup
    /// would reduce part of the row (what the kernel tests' fixed 8-lane choice did at 4 lanes).
    public var rowChoiceProblem: String? {
        if rowSubgroup && (!fixedSubgroup || Int(rowLocal) != subgroupSize) {
            return "row kernels with subgroup reductions need a workgroup of exactly one subgroup, but rowLocal is \(rowLocal) and the device's subgroup size is \(subgroupSize)\(fixedSubgroup ? "" : " (not fixed)")"
        }
        for (name, size) in [("rowLocal", Int(rowLocal)), ("elementwiseLocal", Int(elementwiseLocal))] where size > maxWorkgroupInvocations {
            return "\(name) \(size) exceeds the device's maxComputeWorkGroupInvocations of \(maxWorkgroupInvocations)"
        }
        return nil
    }
}
