import Foundation
import ProbeBackbones
import ProbeTestSupport
import Testing

/// Position-embedding resizing against PyTorch's `F.interpolate(mode="bicubic",
/// align_corners=False)` itself: the values below were printed by torch 2.15 for the 3×4 grid
/// g[i, j] = (4i + j)^1.5 / 7 (float64), with and without antialias, up and down.
@Suite struct PosEmbedResampleTests {
    static let grid: [Float] = (0..<12).map { Float(pow(Double($0), 1.5) / 7) }
    static let torch: [(Int, Int, Bool, [Double])] = [
        (5, 6, true, [-0.0941053058, -0.0443831978, 0.0655199217, 0.2295634365, 0.4611561047, 0.6198719251, 0.2912030814, 0.4024123523,
                      0.6020049332, 0.8291310113, 1.1245820884, 1.3216489655, 1.1129667304, 1.3271102566, 1.6776328871, 2.012742384,
                      2.4182725951, 2.6816847765, 2.5126475356, 2.7869146429, 3.2296696284, 3.6402287949, 4.1265797918, 4.4398945509,
                      3.3482547552, 3.6506520012, 4.1373606484, 4.585652881, 5.1130649014, 5.4519189492]),
        (5, 6, false, [-0.1195194366, -0.0755539735, 0.0416852827, 0.1814602284, 0.4227522294, 0.5872057032, 0.2711481259, 0.3865050835,
                       0.6084455433, 0.8074630118, 1.124147, 1.331524971, 1.1034184042, 1.3229269754, 1.6992472828, 1.9879385992,
                       2.4197542761, 2.6931635224, 2.4535632846, 2.7367035054, 3.2125829985, 3.5664755797, 4.0851346449, 4.4098251397,
                       3.377449882, 3.6902610417, 4.2143967606, 4.6023341678, 5.167258748, 5.5196866754]),
        (2, 3, true, [0.3571994801, 0.7250610458, 1.2246871695, 2.6547124505, 3.4295115077, 4.2646241412]),
        (2, 3, false, [0.209849286, 0.531855374, 1.034170642, 2.8739268223, 3.7061281357, 4.6124904563]),
    ]

    @Test(arguments: 0..<4)
    func matchesPyTorch(_ i: Int) {
        let (h, w, antialias, want) = Self.torch[i]
        let got = PosEmbedResample.resize(Self.grid, h: 3, w: 4, dim: 1, toH: h, toW: w, antialias: antialias)
        // f32 rounding of the result only.
        #expect(relativeError(got, want) <= 1e-6, "\(h)×\(w) antialias \(antialias): \(got)")
    }
}
