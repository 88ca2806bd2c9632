import CZlib
import Foundation

/// Fashion-MNIST as Debian's `dataset-fashion-mnist` ships it: gzipped IDX files
/// (`train-images-idx3-ubyte.gz`, `train-labels-idx1-ubyte.gz`, `t10k-…`) of 28×28 greyscale
/// items, 10 classes, 60,000 + 10,000 images (MIT licence).
public struct FashionMNIST: Sendable {
    public static let debianDirectory = "/usr/share/datasets/fashion-mnist"
    public static let classes = ["t-shirt_top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle_boot"]
    public let side = 28
    /// count × 28 × 28 bytes (white item on black).
    public let pixels: [UInt8]
    public let labels: [UInt8]
    public var count: Int { labels.count }

    /// Reads the training (60k) or test (10k) split from `directory`.
    public init(directory: String = FashionMNIST.debianDirectory, train: Bool) throws {
        let prefix = train ? "train" : "t10k"
        let imagesPath = "\(directory)/\(prefix)-images-idx3-ubyte.gz", labelsPath = "\(directory)/\(prefix)-labels-idx1-ubyte.gz"
        let images = try Self.idx(try Self.gunzip(imagesPath), path: imagesPath, magic: 0x0803, dims: 3)
        let labels = try Self.idx(try Self.gunzip(labelsPath), path: labelsPath, magic: 0x0801, dims: 1)
        guard images.dims.count == 3, images.dims[1] == 28, images.dims[2] == 28, labels.dims == [images.dims[0]] else {
            throw DataError("\(imagesPath): images \(images.dims) and labels \(labels.dims) are not N×28×28 and N")
        }
        guard let bad = labels.payload.firstIndex(where: { $0 > 9 }).map({ Int($0) }) ?? Optional(-1), bad < 0 else {
            throw DataError("\(labelsPath): labels must be 0…9")
        }
        pixels = images.payload; self.labels = labels.payload
    }

    init(pixels: [UInt8], labels: [UInt8]) { self.pixels = pixels; self.labels = labels }

    /// The fallback when Fashion-MNIST is not installed: generated 28×28 glyphs of ten shape
    /// classes (disc, ring, square, frame, triangle, plus, cross, horizontal bars, vertical bars,
    /// checkerboard) with random size and position.
    public static let syntheticClasses = ["disc", "ring", "square", "frame", "triangle", "plus", "cross", "hbars", "vbars", "checker"]
    public static func synthetic(count: Int, seed: UInt64) -> FashionMNIST {
        var px = [UInt8](repeating: 0, count: count * 784), labels = [UInt8](repeating: 0, count: count)
        for i in 0..<count {
            var rng = AugmentRNG(seed: seed, epoch: 0x61, index: i)
            let k = i % 10
            labels[i] = UInt8(k)
            let r = rng.uniform(7, 12.5), cx = 14 + rng.uniform(-12 + r, 12 - r), cy = 14 + rng.uniform(-12 + r, 12 - r)
            for y in 0..<28 {
                for x in 0..<28 {
                    let dx = (Double(x) + 0.5 - cx) / r, dy = (Double(y) + 0.5 - cy) / r
                    let inBox = abs(dx) <= 1 && abs(dy) <= 1
                    let d = (dx * dx + dy * dy).squareRoot()
                    let on: Bool
                    switch k {
                    case 0: on = d <= 1
                    case 1: on = d <= 1 && d >= 0.6
                    case 2: on = inBox
                    case 3: on = inBox && max(abs(dx), abs(dy)) >= 0.6
                    case 4: on = dy <= 1 && dy >= -1 && abs(dx) <= (dy + 1) / 2
                    case 5: on = inBox && (abs(dx) <= 0.25 || abs(dy) <= 0.25)
                    case 6: on = inBox && (abs(dx - dy) <= 0.35 || abs(dx + dy) <= 0.35)
                    case 7: on = inBox && Int(((dy + 1) * 2.5).rounded(.down)) % 2 == 0
                    case 8: on = inBox && Int(((dx + 1) * 2.5).rounded(.down)) % 2 == 0
                    default: on = inBox && (Int(((dx + 1) * 2).rounded(.down)) + Int(((dy + 1) * 2).rounded(.down))) % 2 == 0
                    }
                    if on { px[i * 784 + y * 28 + x] = UInt8(rng.integer(200, 256)) }
                }
            }
        }
        return FashionMNIST(pixels: px, labels: labels)
    }

    /// An IDX file's dimensions and unsigned-byte payload, checked against its size.
    static func idx(_ data: [UInt8], path: String, magic: UInt32, dims: Int) throws -> (dims: [Int], payload: [UInt8]) {
        func be32(_ at: Int) -> UInt32 { data[at..<(at + 4)].reduce(0) { $0 << 8 | UInt32($1) } }
        guard data.count >= 4 + 4 * dims, be32(0) == magic else {
            throw DataError("\(path): not an IDX file of unsigned bytes with \(dims) dimensions (magic \(data.count >= 4 ? String(be32(0), radix: 16) : "missing"))")
        }
        let shape = (0..<dims).map { Int(be32(4 + 4 * $0)) }
        var n = 1
        for d in shape {
            let (m, overflow) = n.multipliedReportingOverflow(by: d)
            guard !overflow, m <= data.count else { throw DataError("\(path): dimensions \(shape) exceed the file") }
            n = m
        }
        let start = 4 + 4 * dims
        guard data.count - start == n else { throw DataError("\(path): \(data.count - start) payload bytes for dimensions \(shape) (\(n) expected)") }
        return (shape, Array(data[start...]))
    }

    /// Decompresses a gzip file (zlib), refusing outputs above 1 GiB.
    static func gunzip(_ path: String) throws -> [UInt8] {
        guard let input = FileManager.default.contents(atPath: path) else {
            throw DataError("\(path): missing (install Debian's dataset-fashion-mnist: apt-get install dataset-fashion-mnist)")
        }
        var stream = z_stream()
        guard inflateInit2_(&stream, 16 + MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else { throw DataError("\(path): zlib failed to start") }
        defer { inflateEnd(&stream) }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var status: Int32 = Z_OK
        try input.withUnsafeBytes { (src: UnsafeRawBufferPointer) in
            stream.next_in = UnsafeMutablePointer(mutating: src.bindMemory(to: Bytef.self).baseAddress)
            stream.avail_in = uInt(src.count)
            repeat {
                let produced: Int = chunk.withUnsafeMutableBufferPointer { dst in
                    stream.next_out = dst.baseAddress
                    stream.avail_out = uInt(dst.count)
                    status = inflate(&stream, Z_NO_FLUSH)
                    return dst.count - Int(stream.avail_out)
                }
                guard status == Z_OK || status == Z_STREAM_END else { throw DataError("\(path): damaged gzip data (zlib status \(status))") }
                output.append(contentsOf: chunk[0..<produced])
                guard output.count <= 1 << 30 else { throw DataError("\(path): decompresses to more than 1 GiB") }
                if produced == 0 && stream.avail_in == 0 && status != Z_STREAM_END { throw DataError("\(path): truncated gzip file") }
            } while status != Z_STREAM_END
        }
        return output
    }
}

/// The demo's task: a Fashion-MNIST item, scaled, tinted and placed at a random position on a
/// larger textured canvas among fragments of other items — the class lives in a few patches,
/// the situation attentive probing is for.
public struct ClutteredCanvas: Sendable {
    /// Canvas side: int(S·256/224) for input size S, so that the eval transform's resize keeps it
    /// and its center crop S × S is what the model sees.
    public var size: Int
    /// The item lies inside the central `inner` × `inner` square (the crop).
    public var inner: Int
    /// Side of the placed item in pixels (drawn uniformly from this range).
    public var itemSide: ClosedRange<Int>
    /// Fragments of other items scattered as clutter.
    public var fragments: Int
    public init(inputSize: Int, itemSide: ClosedRange<Int>? = nil, fragments: Int = 6) {
        size = Int(Double(inputSize) * 256 / 224)
        inner = inputSize
        self.itemSide = itemSide ?? max(14, inputSize * 2 / 7)...max(14, inputSize * 3 / 7)
        self.fragments = fragments
    }

    /// Canvas i drawn from item `item` of `source` (others supply clutter), deterministic in (seed, i).
    public func render(_ source: FashionMNIST, item: Int, seed: UInt64, index: Int) -> RGBImage {
        var rng = AugmentRNG(seed: seed, epoch: 0x5eed, index: index)
        let S = size
        var px = [UInt8](repeating: 0, count: S * S * 3)
        // Background: a smooth two-colour gradient with mild noise.
        let c0 = (0..<3).map { _ in rng.uniform(20, 90) }, c1 = (0..<3).map { _ in rng.uniform(20, 90) }
        let angle = rng.uniform(0, 2 * Double.pi)
        for y in 0..<S {
            for x in 0..<S {
                let t = 0.5 + 0.5 * (cos(angle) * (Double(x) / Double(S) - 0.5) + sin(angle) * (Double(y) / Double(S) - 0.5)) * 1.4
                for c in 0..<3 {
                    let v = c0[c] * (1 - t) + c1[c] * t + rng.uniform(-8, 8)
                    px[(y * S + x) * 3 + c] = UInt8(max(0, min(255, v)))
                }
            }
        }
        func paste(_ k: Int, crop: (x: Int, y: Int, w: Int, h: Int), at: (x: Int, y: Int), scale: Double, tint: [Double]) {
            let W = Int(Double(crop.w) * scale), H = Int(Double(crop.h) * scale)
            for dy in 0..<H {
                for dx in 0..<W {
                    let (x, y) = (at.x + dx, at.y + dy)
                    guard x >= 0, y >= 0, x < S, y < S else { continue }
                    // Bilinear sample of the 28×28 item.
                    let sx = Double(crop.x) + (Double(dx) + 0.5) / scale - 0.5, sy = Double(crop.y) + (Double(dy) + 0.5) / scale - 0.5
                    let x0 = max(0, min(27, Int(sx.rounded(.down)))), y0 = max(0, min(27, Int(sy.rounded(.down))))
                    let x1 = min(27, x0 + 1), y1 = min(27, y0 + 1)
                    let fx = max(0, min(1, sx - Double(x0))), fy = max(0, min(1, sy - Double(y0)))
                    func sample(_ xx: Int, _ yy: Int) -> Double { Double(source.pixels[k * 784 + yy * 28 + xx]) / 255 }
                    let a = (sample(x0, y0) * (1 - fx) + sample(x1, y0) * fx) * (1 - fy) + (sample(x0, y1) * (1 - fx) + sample(x1, y1) * fx) * fy
                    guard a > 0.02 else { continue }
                    for c in 0..<3 {
                        let i = (y * S + x) * 3 + c
                        px[i] = UInt8(max(0, min(255, Double(px[i]) * (1 - a) + tint[c] * a)))
                    }
                }
            }
        }
        // Clutter first: fragments (quarter-item crops) of random other items.
        for _ in 0..<fragments {
            let other = rng.integer(0, source.count)
            let w = rng.integer(8, 15), h = rng.integer(8, 15)
            let scale = Double(rng.integer(itemSide.lowerBound, itemSide.upperBound + 1)) / 28
            paste(other, crop: (rng.integer(0, 28 - w), rng.integer(0, 28 - h), w, h),
                  at: (rng.integer(-4, S - 4), rng.integer(-4, S - 4)), scale: scale,
                  tint: (0..<3).map { _ in rng.uniform(110, 255) })
        }
        // The item, whole, inside the canvas.
        let side = rng.integer(itemSide.lowerBound, itemSide.upperBound + 1)
        let margin = (S - inner) / 2
        paste(item, crop: (0, 0, 28, 28), at: (margin + rng.integer(0, inner - side + 1), margin + rng.integer(0, inner - side + 1)), scale: Double(side) / 28,
              tint: (0..<3).map { _ in rng.uniform(150, 255) })
        return RGBImage(width: S, height: S, pixels: px)
    }

    /// Writes `count` canvases per split as JPEG files in ImageFolder layout:
    /// `root/<split>/<k>-<class>/<index>.jpg`, items drawn class-balanced from `source`.
    public func writeImageFolder(_ source: FashionMNIST, classes: [String] = FashionMNIST.classes, root: URL, split: String, count: Int, seed: UInt64) throws {
        var byClass = [[Int]](repeating: [], count: 10)
        for i in 0..<source.count { byClass[Int(source.labels[i])].append(i) }
        for (k, name) in classes.enumerated() {
            try FileManager.default.createDirectory(at: root.appendingPathComponent(split).appendingPathComponent("\(k)-\(name)"), withIntermediateDirectories: true)
        }
        let lock = NSLock()
        var failure: Error?
        DispatchQueue.concurrentPerform(iterations: count) { i in
            let cls = i % 10
            let pool = byClass[cls]
            let item = pool[(i / 10 * 7919 + Int(seed % 1000)) % pool.count]
            let image = render(source, item: item, seed: seed, index: i)
            do {
                let url = root.appendingPathComponent(split).appendingPathComponent("\(cls)-\(classes[cls])")
                    .appendingPathComponent(String(format: "%05d.jpg", i))
                try ImageEncoder.jpeg(image, quality: 92).write(to: url, options: .atomic)
            } catch { lock.lock(); failure = error; lock.unlock() }
        }
        if let failure { throw failure }
    }
}
