import VulkanCompute

extension KernelContext {
    /// Copies `source` into `destination` elementwise (same shape, any strides, f32/f16 either side):
    /// transpose, permute, slice, concat and dtype conversion are all this.
    public func copy(_ source: Tensor, into destination: Tensor) throws {
        let op = "copy"
        try checkDevice(op, source, destination)
        guard source.shape == destination.shape else { throw OpError.shape(op, "source \(source), destination \(destination)") }
        guard source.rank <= 6 else { throw OpError.shape(op, "\(source): at most 6 axes") }
        guard source.dtype != .i32, destination.dtype != .i32 else { throw OpError.dtype(op, "\(source) → \(destination): f32/f16 only") }
        if source.count == 0 { return }
        let limit = device.capabilities.maxStorageBufferRange - 64
        if source.span * source.dtype.size > limit || destination.span * destination.dtype.size > limit,
           let axis = source.shape.firstIndex(where: { $0 > 1 }) {
            let h = source.shape[axis] / 2
            for r in [0..<h, h..<source.shape[axis]] { try copy(try source.slice(axis: axis, r), into: try destination.slice(axis: axis, r)) }
            return
        }
        let pad = 6 - source.rank
        let shape = Array(repeating: 1, count: pad) + source.shape
        let si = Array(repeating: 0, count: pad) + source.strides, so = Array(repeating: 0, count: pad) + destination.strides
        let (bs, os) = try bind(source, .read, op: op), (bd, od) = try bind(destination, .write, op: op)
        var p = Push(); p.u(source.count); p.u(os); p.u(od)
        (shape + si + so).forEach { p.u($0) }
        let name: String
        switch (source.dtype, destination.dtype) {
        case (.f16, .f32): name = "copy_f16_f32"
        case (.f32, .f16): name = "copy_f32_f16"
        case (.f16, .f16): name = "copy_f16_f16"
        default: name = "copy"
        }
        let k = try kernel(name, bindings: 2, push: p.bytes, spec: [variants.elementwiseLocal])
        try stream.dispatch(k, [bs, bd], push: p.words, groups: (groups(source.count, Int(variants.elementwiseLocal)), 1, 1))
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
