/// A BatchNorm test case: a shape with its channel axis, the (outer, C, inner) view the reference
/// takes, and the inputs both the reference's gradient check (ProbeOpsTests) and the device
/// kernels' test (ProbeKernelsTests) draw — the same seeds, so the two see the same numbers.
public struct BatchNormCase {
    public let shape: [Int], axis: Int
    public let n: Int, C: Int, outer: Int, inner: Int
    public let x: [Double], dy: [Double], gamma: [Double], beta: [Double], runningMean: [Double], runningVar: [Double]

    public init(shape: [Int], axis: Int) {
        self.shape = shape; self.axis = axis
        n = shape.reduce(1, *); C = shape[axis]
        outer = shape[..<axis].reduce(1, *); inner = shape[(axis + 1)...].reduce(1, *)
        x = randomValues(n, seed: UInt64(n), lo: -1, hi: 2); dy = randomValues(n, seed: 9)
        gamma = randomValues(C, seed: 1, lo: 0.5, hi: 1.5); beta = randomValues(C, seed: 2)
        runningMean = randomValues(C, seed: 3); runningVar = randomValues(C, seed: 4, lo: 0.5, hi: 2)
    }
}
