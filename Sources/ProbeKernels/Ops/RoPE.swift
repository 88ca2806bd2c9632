import ProbeShaders
import VulkanCompute

/// Which channels of a head a rotary embedding rotates together (timm's `rotate_half`).
public enum RoPEPairing: Sendable {
    /// (2j, 2j + 1): EVA-02, PE (`rot`).
    case interleaved
    /// (j, j + hd/2): DINOv3 (`rope_rotate_half`).
    case half
}

extension KernelContext {
    /// Rotary position embedding applied in place: `x` (B, T, H, hd) — any strides with a
    /// contiguous last axis, f32 or f16 (q or k inside a packed projection) — rotated by the dense
    /// (T, hd) f32 tables: `x·cos + rot(x)·sin` as timm's `apply_rot_embed`. `inverse` applies the
    /// transpose of that rotation (its backward).
    public func rope(_ x: Tensor, cos: Tensor, sin: Tensor, pairing: RoPEPairing, inverse: Bool = false) throws {
        let op = "rope"
        try checkDevice(op, x, cos, sin)
        guard x.dtype.isF32OrF16 else { throw OpError.dtype(op, "x \(x) must be f32 or f16") }
        try requireF32(op, cos, sin); try requireContiguous(op, cos, sin)
        guard x.rank == 4 else { throw OpError.shape(op, "x \(x) must be (B, T, H, hd)") }
        let (T, hd) = (x.shape[1], x.shape[3])
        guard hd % 2 == 0, x.strides[3] == 1 else { throw OpError.shape(op, "x \(x): the head width must be even and contiguous") }
        guard cos.shape == [T, hd], sin.shape == [T, hd] else { throw OpError.shape(op, "tables cos \(cos), sin \(sin) for x \(x): (T, hd) expected") }
        if x.count == 0 { return }
        let variant: RopeKernel.Variant = x.dtype == .f16 ? .f16 : .base
        try forEachPiece(op, [x], [SplitAxis(size: x.shape[0], axes: [0])]) { t, _ in
            let (bx, ox) = try bind(t[0], .readWrite, op: op)
            let (bc, oc) = try bind(cos, .read, op: op), (bs, os) = try bind(sin, .read, op: op)
            let pairs = t[0].count / 2
            guard pairs < fastDivideLimit else { throw OpError.unsupported(op, "\(t[0]): 2³¹ elements or more in one binding") }
            let k = try kernel(RopeKernel.self, variant, .init(localSizeX: variants.elementwiseLocal, HALF: pairing == .half, INVERSE: inverse))
            let push = RopeKernel.Push(pairs: pairs, halfDim: hd / 2, heads: t[0].shape[2], tokens: T, offX: ox,
                                       sB: t[0].strides[0], sT: t[0].strides[1], sH: t[0].strides[2], offC: oc, offS: os)
            try stream.dispatch(k, [bx, bc, bs], push: push, groups: elementGroups(pairs))
        }
    }
}
