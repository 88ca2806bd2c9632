import ProbeAutodiff
import ProbeKernels
import ProbeTestSupport
import Testing

/// The gradient of slices of one value: overlapping row slices (updated in place in the gradient
/// the graph owns), a strided column slice (added, then copied back), and the value also used
/// in a sum with another (its gradient then arrives as the same buffer as the other's, which must
/// never be updated in place).
@Suite struct SliceGradientTests {
    @Test func slicesOfOneValueSumTheirGradients() throws {
        let ctx = try makeContext()
        let gpu = GPUBackend(ctx)
        let (R, C) = (6, 8)
        let w0 = (0..<(R * C)).map { Float($0 % 7) * 0.25 - 0.5 }
        let c1 = (0..<(3 * C)).map { Float($0 % 5) - 2 }, c2 = (0..<(4 * C)).map { Float($0 % 3) * 0.5 }
        let c3 = (0..<(R * 3)).map { Float($0 % 4) + 1 }, c4 = (0..<(R * C)).map { Float($0 % 6) * -0.125 }
        for wholeFirst in [false, true] {
            let g = Graph(gpu, training: true)
            let w = g.parameter(try gpu.constant(w0, [R, C]), name: "w")
            func weighted(_ v: Variable<GPUBackend>, _ c: [Float], _ shape: [Int]) throws -> Variable<GPUBackend> {
                try g.sum(try g.reshape(try g.mul(v, g.constant(try gpu.constant(c, shape))), [-1]), axis: 0)
            }
            let z = g.parameter(try gpu.constant(c4.map { $0 + 3 }, [R, C]), name: "z")
            // loss = Σ c1·w[0..<3] + Σ c2·w[2..<6] + Σ c3·w[:, 2..<5] + Σ c4·(w + z)   (rows 2 overlap).
            // The backward of w + z hands the same buffer to w and z: updating w's gradient in
            // place would change z's. Recorded before the slices, it reaches w last; after, first.
            var terms: [Variable<GPUBackend>] = []
            func whole() throws { terms.append(try weighted(try g.add(w, z), c4, [R, C])) }
            if wholeFirst { try whole() }
            terms += [try weighted(try g.slice(w, axis: 0, 0..<3), c1, [3, C]),
                      try weighted(try g.slice(w, axis: 0, 2..<6), c2, [4, C]),
                      try weighted(try g.slice(w, axis: 1, 2..<5), c3, [R, 3])]
            if !wholeFirst { try whole() }
            var loss = terms[0]
            for t in terms.dropFirst() { loss = try g.add(loss, t) }
            try g.backward(loss, grad: try gpu.constant([1], g.shape(loss)))
            var want = c4
            for i in 0..<3 { for j in 0..<C { want[i * C + j] += c1[i * C + j] } }
            for i in 0..<4 { for j in 0..<C { want[(i + 2) * C + j] += c2[i * C + j] } }
            for i in 0..<R { for j in 0..<3 { want[i * C + j + 2] += c3[i * 3 + j] } }
            let got = try gpu.toHost(try #require(w.grad))
            #expect(got == want, "order \(wholeFirst ? "whole first" : "slices first")")
            #expect(try gpu.toHost(try #require(z.grad)) == c4, "z's gradient changed by w's slices")
            // The parameter itself is untouched.
            #expect(try gpu.toHost(w.value) == w0)
        }
        expectNoValidationMessages(ctx)
    }
}
