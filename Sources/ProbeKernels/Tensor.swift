@_exported import ProbeOps
import VulkanCompute

/// A view of device memory: shape, strides (in elements), dtype, and where it starts in a buffer.
/// Row-major; most kernels require contiguous tensors and say so when given another.
public struct Tensor: @unchecked Sendable, CustomStringConvertible {
    public let buffer: Buffer
    /// Offset of element [0, 0, ...] in elements of `dtype` from the buffer's start.
    public let offset: Int
    public let shape: [Int]
    public let strides: [Int]
    public let dtype: DType

    public init(buffer: Buffer, offset: Int = 0, shape: [Int], strides: [Int]? = nil, dtype: DType = .f32) {
        self.buffer = buffer; self.offset = offset; self.shape = shape
        self.strides = strides ?? Tensor.contiguousStrides(shape); self.dtype = dtype
    }

    public static func contiguousStrides(_ shape: [Int]) -> [Int] { ProbeOps.contiguousStrides(shape) }

    public var count: Int { shape.reduce(1, *) }
    public var rank: Int { shape.count }
    public var isContiguous: Bool { strides == Tensor.contiguousStrides(shape) }
    /// Row-major without gaps, ignoring the strides of size-1 axes (a slice of a contiguous tensor
    /// along its first non-unit axis is dense).
    public var isDense: Bool {
        let c = Tensor.contiguousStrides(shape)
        return shape.indices.allSatisfy { shape[$0] == 1 || strides[$0] == c[$0] }
    }
    public var description: String { "\(dtype)\(shape)" + (isContiguous ? "" : " strides \(strides)") }
    public var device: ComputeDevice { buffer.device }

    /// Same elements, another shape (contiguous tensors only).
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        var s = newShape
        if let i = s.firstIndex(of: -1) { s[i] = count / max(1, s.filter { $0 != -1 }.reduce(1, *)) }
        guard s.reduce(1, *) == count else { throw OpError.shape("reshape", "cannot reshape \(self) to \(newShape)") }
        guard isContiguous else { throw OpError.shape("reshape", "\(self) is not contiguous; copy it first (contiguous())") }
        return Tensor(buffer: buffer, offset: offset, shape: s, dtype: dtype)
    }

    /// A view with axes permuted (no copy).
    public func permuted(_ order: [Int]) throws -> Tensor {
        guard order.sorted() == Array(0..<rank) else { throw OpError.shape("permute", "\(order) is not a permutation of the axes of \(self)") }
        return Tensor(buffer: buffer, offset: offset, shape: order.map { shape[$0] }, strides: order.map { strides[$0] }, dtype: dtype)
    }

    /// Removes a size-1 axis (no copy; works on any view).
    public func squeezed(_ axis: Int) throws -> Tensor {
        guard shape.indices.contains(axis), shape[axis] == 1 else { throw OpError.shape("squeeze", "axis \(axis) of \(self) is not of size 1") }
        var s = shape, st = strides
        s.remove(at: axis); st.remove(at: axis)
        return Tensor(buffer: buffer, offset: offset, shape: s, strides: st, dtype: dtype)
    }

    /// Inserts a size-1 axis at `axis` (no copy).
    public func unsqueezed(_ axis: Int) throws -> Tensor {
        guard (0...rank).contains(axis) else { throw OpError.shape("unsqueeze", "axis \(axis) of \(self)") }
        var s = shape, st = strides
        s.insert(1, at: axis); st.insert(axis < rank ? strides[axis] * shape[axis] : 1, at: axis)
        return Tensor(buffer: buffer, offset: offset, shape: s, strides: st, dtype: dtype)
    }

    /// A view of `range` along `axis` (no copy).
    public func slice(axis: Int, _ range: Range<Int>) throws -> Tensor {
        guard shape.indices.contains(axis), range.lowerBound >= 0, range.upperBound <= shape[axis], !range.isEmpty else {
            throw OpError.shape("slice", "range \(range) on axis \(axis) of \(self)")
        }
        var s = shape; s[axis] = range.count
        return Tensor(buffer: buffer, offset: offset + range.lowerBound * strides[axis], shape: s, strides: strides, dtype: dtype)
    }

    /// Number of elements spanned from the first to one past the last element.
    var span: Int {
        guard count > 0 else { return 0 }
        return 1 + zip(shape, strides).map { ($0 - 1) * $1 }.reduce(0, +)
    }
}
