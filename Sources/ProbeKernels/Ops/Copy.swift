import ProbeShaders
import VulkanCompute

extension KernelContext {
    /// Copies `source` into `destination` elementwise (same shape, any strides; f32/f16 either side,
    /// or f32/bf16 either side): transpose, permute, slice, concat and dtype conversion are all
    /// this. f32 → f16 and f32 → bf16 round to nearest, ties to even.
    public func copy(_ source: Tensor, into destination: Tensor) throws {
        let op = "copy"
        try checkDevice(op, source, destination)
        guard source.shape == destination.shape else { throw OpError.shape(op, "source \(source), destination \(destination)") }
        guard source.rank <= 6 else { throw OpError.shape(op, "\(source): at most 6 axes") }
        let variant: CopyKernel.Variant
        let texelVariant: CopyKernel.Variant
        switch (source.dtype, destination.dtype) {
        case (.f32, .f32): (variant, texelVariant) = (.base, .texel)
        case (.f16, .f32): (variant, texelVariant) = (.f16_f32, .texel_f16_f32)
        case (.f32, .f16): (variant, texelVariant) = (.f32_f16, .texel_f32_f16)
        case (.f16, .f16): (variant, texelVariant) = (.f16_f16, .texel_f16_f16)
        case (.f32, .bf16): (variant, texelVariant) = (.f32_bf16, .texel_f32_bf16)
        case (.bf16, .f32): (variant, texelVariant) = (.bf16_f32, .texel_bf16_f32)
        case (.bf16, .bf16): (variant, texelVariant) = (.bf16_bf16, .texel_bf16_bf16)
        default: throw OpError.dtype(op, "\(source) → \(destination): f32/f16 either side, or f32/bf16 either side")
        }
        if source.count == 0 { return }
        try forEachPiece(op, [source, destination], source.shape.indices.map { SplitAxis(size: source.shape[$0], axes: [$0, $0]) }) { t, _ in
            if try blockTranspose(t[0], into: t[1]) { return }
            let flat = t[0].isDense && t[1].isDense
            let (bs, os) = try bind(t[0], .read, op: op), (bd, od) = try bind(t[1], .write, op: op)
            guard t[0].count < fastDivideLimit else { throw OpError.unsupported(op, "\(t[0]): 2³¹ elements or more in one binding") }
            let axes = MergedAxes(t[0].shape, [t[0].strides, t[1].strides])
            let pad = 6 - axes.shape.count
            let shape = Array(repeating: 1, count: pad) + axes.shape
            let divisors = shape.map { FastDivisor($0) }
            let sIn = Array(repeating: 0, count: pad) + axes.strides[0], sOut = Array(repeating: 0, count: pad) + axes.strides[1]
            // Four outputs per float4 store where the layout allows (lavapipe pays per store
            // instruction and lane; CPU devices only: a GPU coalesces scalar stores anyway).
            let vec4 = variants.elementsPerInvocation > 1 && t[0].count % 4 == 0 && od % 4 == 0
                && (flat || t[1].isContiguous || (shape[5] % 4 == 0 && sOut[5] == 1 && sOut.prefix(5).allSatisfy { $0 % 4 == 0 }))
            let groups = elementGroups(vec4 ? t[0].count / 4 : t[0].count)
            // One push block for either kernel (the texel twin shares CopyKernel.Push).
            let push = CopyKernel.Push(n: t[0].count, offIn: os, offOut: od, shape: shape, sIn: sIn, sOut: sOut,
                                       magic: divisors.map(\.magic), shifts: FastDivisor.packShifts(divisors))
            // The source's four under a float4 of outputs contiguous on the four-element grid: one
            // float4 read (copy.glsl, QUAD_SRC).
            let quad = vec4 && os % 4 == 0 && (flat || (shape[5] % 4 == 0 && sIn[5] == 1 && sIn.prefix(5).allSatisfy { $0 % 4 == 0 }))
            if variants.texelTwins {
                // f32 as RGBA32UI bits (copies move every pattern exactly), else the dtype's own.
                let quadView = quad ? texelBinding(bs, format: t[0].dtype == .f32 ? .rgba32ui : texelFormat(t[0].dtype, elements: 4)) : nil
                if let ts = quadView ?? texelBinding(bs, format: texelFormat(t[0].dtype, elements: 1)) {
                    let k = try kernel(CopyKernel.self, texelVariant, .init(localSizeX: variants.elementwiseLocal, FLAT: flat, VEC4: vec4,
                                                                                 AXES: UInt32(axes.shape.count), QUAD_SRC: quadView != nil))
                    try stream.dispatch(k, [ts, bd], push: push, groups: groups)
                    return
                }
            }
            let k = try kernel(CopyKernel.self, variant, .init(localSizeX: variants.elementwiseLocal, FLAT: flat, VEC4: vec4, AXES: UInt32(axes.shape.count),
                                                               QUAD_SRC: quad))
            try stream.dispatch(k, [bs, bd], push: push, groups: groups)
        }
    }

    /// A contiguous copy of `x` (or `x` itself when already contiguous and of that dtype).
    public func contiguous(_ x: Tensor, dtype: DType? = nil) throws -> Tensor {
        let d = dtype ?? x.dtype
        if x.isContiguous && d == x.dtype { return x }
        let out = try empty(x.shape, dtype: d)
        try copy(x, into: out)
        return out
    }

    /// Concatenates along `axis`.
    public func concat(_ parts: [Tensor], axis: Int) throws -> Tensor {
        guard let first = parts.first else { throw OpError.shape("concat", "no tensors") }
        for t in parts where t.rank != first.rank || (0..<t.rank).contains(where: { $0 != axis && t.shape[$0] != first.shape[$0] }) || t.dtype != first.dtype {
            throw OpError.shape("concat", "\(parts) differ outside axis \(axis)")
        }
        var shape = first.shape
        shape[axis] = parts.map { $0.shape[axis] }.reduce(0, +)
        let out = try empty(shape, dtype: first.dtype)
        var at = 0
        for t in parts {
            try copy(t, into: try out.slice(axis: axis, at..<(at + t.shape[axis])))
            at += t.shape[axis]
        }
        return out
    }
}
