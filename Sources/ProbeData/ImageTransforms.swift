import Foundation

/// Per-channel normalisation of pixels in [0, 1]: (x − mean) / std (torchvision's Normalize).
public struct Normalization: Sendable, Equatable, Codable {
    public var mean: [Float]
    public var std: [Float]
    public init(mean: [Float], std: [Float]) { self.mean = mean; self.std = std }
    public static let imageNet = Normalization(mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225])

    /// ToTensor + Normalize of an RGB image: (3, H, W) f32, as torchvision computes it in f32.
    public func tensor(_ image: RGBImage) -> [Float] {
        let n = image.width * image.height
        var out = [Float](repeating: 0, count: 3 * n)
        for i in 0..<n { for c in 0..<3 { out[c * n + i] = (Float(image.pixels[3 * i + c]) / 255 - mean[c]) / std[c] } }
        return out
    }
}

/// The train and eval transforms of a family.
public enum TransformFamily: String, Codable, Sendable, CaseIterable {
    /// Upstream's own: RandomResizedCrop(S, scale 0.08–1) + flip; Resize(int(S·256/224)) + CenterCrop(S).
    case mae
    /// open_clip's for CLIP: RandomResizedCrop(S, scale 0.9–1), no flip; Resize(S) (shorter side) + CenterCrop(S).
    case clip
    /// open_clip's for SigLIP: the same training crop; eval squashes the image to S × S.
    case siglip
    /// open_clip's `squash` resize mode for CLIP towers whose weights ask for it (the 378-px
    /// MetaCLIP 2 and DFN towers): as `siglip`, with the tower's own statistics.
    case squash
    /// open_clip's for PE-Core (`interpolation: bilinear`, `resize_mode: squash`): the training
    /// crop and the eval squash with PIL's bilinear filter instead of bicubic.
    case pe
}

extension TransformFamily {
    /// The family's training and evaluation transforms at input size S.
    public func transforms(size: Int) -> (train: TrainTransform, eval: EvalTransform) {
        switch self {
        case .mae: return (TrainTransform(size: size), EvalTransform(size: size))
        case .clip, .siglip, .squash, .pe:
            // open_clip: torchvision's RandomResizedCrop (its ten-try loop) at scale 0.9–1, no flip.
            var t = TrainTransform(size: size)
            t.scale = 0.9...1; t.flip = false; t.torchvisionRetries = true
            var e = self == .clip ? EvalTransform(size: size, resizeTo: size) : EvalTransform(squashTo: size)
            if self == .pe { t.filter = .bilinear; e.filter = .bilinear }
            return (t, e)
        }
    }
}

/// Python's round() (half to even), as torchvision's crop arithmetic uses it.
func pythonRound(_ x: Double) -> Int { Int(x.rounded(.toNearestOrEven)) }

/// Upstream's evaluation transform on PIL images: `Resize(int(S·256/224), bicubic)` of the shorter
/// side, then `CenterCrop(S)`.
public struct EvalTransform: Sendable {
    public let size: Int
    public let resizeTo: Int
    /// open_clip's `squash` (SigLIP): the whole image resized to S × S, no crop.
    public let squash: Bool
    /// PIL's filter for the resize (open_clip's `interpolation`; upstream's own: bicubic).
    public var filter = PILResize.Filter.bicubic
    public init(size: Int) { self.size = size; resizeTo = Int(Double(size) * 256 / 224); squash = false }
    /// Resize(resizeTo) of the shorter side, then CenterCrop(size) (open_clip's `shortest`: resizeTo = size).
    public init(size: Int, resizeTo: Int) { self.size = size; self.resizeTo = resizeTo; squash = false }
    public init(squashTo size: Int) { self.size = size; resizeTo = size; squash = true }

    public func callAsFunction(_ image: RGBImage) -> RGBImage {
        if squash { return PILResize.resize(image, width: size, height: size, filter: filter) }
        // torchvision's _compute_resized_output_size: the shorter side to `resizeTo`, the longer
        // int(resizeTo · long / short).
        let (w, h) = (image.width, image.height)
        let (short, long) = w <= h ? (w, h) : (h, w)
        let newLong = Int(Double(resizeTo) * Double(long) / Double(short))
        let (nw, nh) = w <= h ? (resizeTo, newLong) : (newLong, resizeTo)
        return centerCrop(PILResize.resize(image, width: nw, height: nh, filter: filter), size)
    }
}

/// torchvision's CenterCrop: top = round((H − S) / 2), left = round((W − S) / 2) (Python's
/// rounding); images smaller than S are padded with zeros first, as torchvision pads.
public func centerCrop(_ image: RGBImage, _ size: Int) -> RGBImage {
    var img = image
    if img.width < size || img.height < size {
        let pw = max(size - img.width, 0), ph = max(size - img.height, 0)
        let (left, top) = (pw / 2, ph / 2)
        let (W, H) = (img.width + pw, img.height + ph)
        var out = [UInt8](repeating: 0, count: W * H * 3)
        for y in 0..<img.height {
            out.replaceSubrange(((y + top) * W + left) * 3..<((y + top) * W + left + img.width) * 3,
                                with: img.pixels[(y * img.width * 3)..<((y + 1) * img.width * 3)])
        }
        img = RGBImage(width: W, height: H, pixels: out)
    }
    let top = pythonRound(Double(img.height - size) / 2), left = pythonRound(Double(img.width - size) / 2)
    return PILResize.crop(img, left: left, top: top, width: size, height: size)
}

/// A seeded generator for augmentation (SplitMix64), one stream per (seed, epoch, image).
public struct AugmentRNG {
    var state: UInt64
    public init(seed: UInt64, epoch: Int, index: Int) {
        state = seed &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(epoch) &* 0xC2B2_AE3D_27D4_EB4F ^ UInt64(index) &* 0x1656_67B1_9E37_79F9
    }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    public mutating func uniform(_ lo: Double, _ hi: Double) -> Double { lo + (hi - lo) * Double(next() >> 11) / Double(1 << 53) }
    /// An integer in [lo, hi).
    public mutating func integer(_ lo: Int, _ hi: Int) -> Int { lo + Int(next() % UInt64(max(hi - lo, 1))) }
}

/// Upstream's training transform: MAE's RandomResizedCrop (one draw, no retry loop: area
/// uniform in scale × image area, log-uniform aspect ratio, sides clamped to the image, offsets
/// uniform), resized to S × S with PIL's bicubic, then a horizontal flip with probability ½.
public struct TrainTransform: Sendable {
    public let size: Int
    public var scale: ClosedRange<Double> = 0.08...1
    public var ratio: ClosedRange<Double> = (3.0 / 4)...(4.0 / 3)
    public var flip = true
    /// torchvision's RandomResizedCrop instead of MAE's: up to ten draws until the crop fits, then
    /// the center crop with the aspect ratio clamped to the range (open_clip's training crop).
    public var torchvisionRetries = false
    /// PIL's filter for the resize of the crop (open_clip's `interpolation`).
    public var filter = PILResize.Filter.bicubic
    public init(size: Int) { self.size = size }

    /// The crop (left, top, width, height).
    func crop(_ W: Int, _ H: Int, _ rng: inout AugmentRNG) -> (Int, Int, Int, Int) {
        let area = Double(W * H)
        for _ in 0..<(torchvisionRetries ? 10 : 1) {
            let target = area * rng.uniform(scale.lowerBound, scale.upperBound)
            let aspect = exp(rng.uniform(log(ratio.lowerBound), log(ratio.upperBound)))
            var w = pythonRound((target * aspect).squareRoot()), h = pythonRound((target / aspect).squareRoot())
            if torchvisionRetries && !(w > 0 && w <= W && h > 0 && h <= H) { continue }
            w = min(max(w, 1), W); h = min(max(h, 1), H)
            let top = rng.integer(0, H - h + 1), left = rng.integer(0, W - w + 1)
            return (left, top, w, h)
        }
        let inRatio = Double(W) / Double(H)
        var w = W, h = H
        if inRatio < ratio.lowerBound { h = pythonRound(Double(w) / ratio.lowerBound) } else if inRatio > ratio.upperBound { w = pythonRound(Double(h) * ratio.upperBound) }
        return ((W - w) / 2, (H - h) / 2, w, h)
    }

    public func callAsFunction(_ image: RGBImage, _ rng: inout AugmentRNG) -> RGBImage {
        let (left, top, w, h) = crop(image.width, image.height, &rng)
        var out = PILResize.resize(PILResize.crop(image, left: left, top: top, width: w, height: h), width: size, height: size, filter: filter)
        if flip && rng.next() & 1 == 1 {
            var px = out.pixels
            for y in 0..<size {
                for x in 0..<(size / 2) {
                    for c in 0..<3 { px.swapAt((y * size + x) * 3 + c, (y * size + size - 1 - x) * 3 + c) }
                }
            }
            out.pixels = px
        }
        return out
    }
}
