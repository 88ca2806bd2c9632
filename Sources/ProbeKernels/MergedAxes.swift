/// The index space of an elementwise kernel over tensors of one shape (a copy's source and
/// destination; a binary op's broadcast operands and output) with unit axes dropped and
/// neighbours merged where every tensor steps through them as one axis (at least one axis left):
/// lavapipe pays for every axis a kernel decomposes an index along (a fastDivide per lane), so
/// kernels decompose only these.
struct MergedAxes: Equatable {
    var shape: [Int] = []
    /// Per tensor, its stride along each merged axis.
    var strides: [[Int]]

    init(_ fullShape: [Int], _ fullStrides: [[Int]]) {
        strides = fullStrides.map { _ in [] }
        for d in fullShape.indices where fullShape[d] > 1 {
            let n = fullShape[d]
            if let last = shape.indices.last, fullStrides.indices.allSatisfy({ strides[$0][last] == fullStrides[$0][d] * n }) {
                shape[last] *= n
                for t in strides.indices { strides[t][last] = fullStrides[t][d] }
            } else {
                shape.append(n)
                for t in strides.indices { strides[t].append(fullStrides[t][d]) }
            }
        }
        if shape.isEmpty { shape = [1]; strides = strides.map { _ in [0] } }
    }
}
