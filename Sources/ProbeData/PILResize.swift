import Foundation

/// PIL's `Image.resize(size, Image.BICUBIC)` (or `BILINEAR`) on 8-bit RGB, bit for bit (Pillow's Resample.c):
/// a separable filter whose support widens by the reduction factor, coefficients normalised and
/// turned into 22-bit fixed point, the horizontal pass first and its result rounded to 8 bits
/// before the vertical pass; a pass is skipped when its dimension does not change. This is what
/// torchvision's `Resize` and `RandomResizedCrop` do to PIL images.
public enum PILResize {
    static let precisionBits = 32 - 8 - 2

    /// PIL's resampling filters that torchvision's transforms use here.
    public enum Filter: String, Codable, Sendable {
        case bicubic, bilinear
        /// Pillow's filter support at scale 1.
        var support: Double { self == .bicubic ? 2 : 1 }
        func weight(_ x: Double) -> Double {
            switch self {
            case .bicubic: return PILResize.bicubic(x)
            case .bilinear: let x = abs(x); return x < 1 ? 1 - x : 0   // Pillow's triangle filter
            }
        }
    }

    /// PIL's bicubic filter (a = −0.5, support 2).
    static func bicubic(_ x: Double) -> Double {
        let a = -0.5, x = abs(x)
        if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
        if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
        return 0
    }

    /// For each output position: the first input index and the fixed-point weights.
    static func coefficients(inSize: Int, in0: Double, in1: Double, outSize: Int, filter: Filter = .bicubic) -> [(Int, [Int32])] {
        let scale = (in1 - in0) / Double(outSize)
        let filterScale = max(scale, 1)
        let support = filter.support * filterScale
        return (0..<outSize).map { xx -> (Int, [Int32]) in
            let center = in0 + (Double(xx) + 0.5) * scale
            let ss = 1 / filterScale
            // C's (int) truncates toward zero.
            let xmin = max(Int(center - support + 0.5), 0)
            let xmax = min(Int(center + support + 0.5), inSize) - xmin
            var k = (0..<max(xmax, 0)).map { filter.weight((Double($0 + xmin) - center + 0.5) * ss) }
            let ww = k.reduce(0, +)
            if ww != 0 { k = k.map { $0 / ww } }
            let one = Double(1 << precisionBits)
            return (xmin, k.map { $0 < 0 ? Int32(-0.5 + $0 * one) : Int32(0.5 + $0 * one) })
        }
    }

    static func clip8(_ v: Int64) -> UInt8 {
        let s = v >> Int64(precisionBits)
        return s < 0 ? 0 : s > 255 ? 255 : UInt8(s)
    }

    /// The coefficients laid flat for the passes' inner loops: output `o` reads `count[o]` inputs from
    /// `first[o]` with the weights at `weights[offset[o]...]`. (Plain arrays and index loops: an
    /// array of tuples of arrays walked with `enumerated()` costs generic-metadata lookups per pixel
    /// in a debug build, 10× the arithmetic.)
    struct Taps {
        var first: [Int] = [], count: [Int] = [], offset: [Int] = [], weights: [Int32] = []
        init(_ coeffs: [(Int, [Int32])], shift: Int = 0) {
            for (xmin, k) in coeffs {
                first.append(xmin - shift); count.append(k.count); offset.append(weights.count); weights.append(contentsOf: k)
            }
        }
    }

    /// Resizes `image` to `width` × `height`.
    public static func resize(_ image: RGBImage, width: Int, height: Int, filter: Filter = .bicubic) -> RGBImage {
        precondition(width > 0 && height > 0)
        let needH = width != image.width, needV = height != image.height
        if !needH && !needV { return image }
        let vert = coefficients(inSize: image.height, in0: 0, in1: Double(image.height), outSize: height, filter: filter)
        guard needH else { return vertical(image, Taps(vert), height) }
        // Only the rows the vertical pass reads.
        let first = needV ? vert[0].0 : 0
        let last = needV ? vert[height - 1].0 + vert[height - 1].1.count : image.height
        let horiz = Taps(coefficients(inSize: image.width, in0: 0, in1: Double(image.width), outSize: width, filter: filter))
        var out = [UInt8](repeating: 0, count: width * (last - first) * 3)
        let half: Int64 = 1 << Int64(precisionBits - 1)
        image.pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                horiz.first.withUnsafeBufferPointer { xmin in
                    horiz.count.withUnsafeBufferPointer { count in
                        horiz.offset.withUnsafeBufferPointer { offset in
                            horiz.weights.withUnsafeBufferPointer { weights in
                                for y in first..<last {
                                    let row = y * image.width * 3, dstRow = (y - first) * width * 3
                                    var x = 0
                                    while x < width {
                                        var s0 = half, s1 = half, s2 = half
                                        var p = row + xmin[x] * 3, k = offset[x]
                                        let end = k + count[x]
                                        while k < end {
                                            let w = Int64(weights[k])
                                            s0 += Int64(src[p]) * w; s1 += Int64(src[p + 1]) * w; s2 += Int64(src[p + 2]) * w
                                            p += 3; k += 1
                                        }
                                        dst[dstRow + x * 3] = clip8(s0); dst[dstRow + x * 3 + 1] = clip8(s1); dst[dstRow + x * 3 + 2] = clip8(s2)
                                        x += 1
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        let current = RGBImage(width: width, height: last - first, pixels: out)
        return needV ? vertical(current, Taps(vert, shift: first), height) : current
    }

    /// The vertical pass, a row at a time: each output row accumulates whole input rows (integer
    /// sums, so the order of the terms does not change a bit).
    static func vertical(_ image: RGBImage, _ taps: Taps, _ height: Int) -> RGBImage {
        let n = image.width * 3
        var out = [UInt8](repeating: 0, count: n * height)
        var acc = [Int64](repeating: 0, count: n)
        let half: Int64 = 1 << Int64(precisionBits - 1)
        image.pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                acc.withUnsafeMutableBufferPointer { acc in
                    for y in 0..<height {
                        for x in 0..<n { acc[x] = half }
                        var k = taps.offset[y]
                        for i in 0..<taps.count[y] {
                            let w = Int64(taps.weights[k]), row = (taps.first[y] + i) * n
                            var x = 0
                            while x < n { acc[x] += Int64(src[row + x]) * w; x += 1 }
                            k += 1
                        }
                        let dstRow = y * n
                        for x in 0..<n { dst[dstRow + x] = clip8(acc[x]) }
                    }
                }
            }
        }
        return RGBImage(width: image.width, height: height, pixels: out)
    }

    /// `image.crop((left, top, left + width, top + height))` (inside the image).
    public static func crop(_ image: RGBImage, left: Int, top: Int, width: Int, height: Int) -> RGBImage {
        var out = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            let src = ((top + y) * image.width + left) * 3
            out.replaceSubrange((y * width * 3)..<((y + 1) * width * 3), with: image.pixels[src..<(src + width * 3)])
        }
        return RGBImage(width: width, height: height, pixels: out)
    }
}
