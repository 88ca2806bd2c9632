import Foundation

/// Where one image of a dataset comes from.
public enum ImageItem: Sendable {
    /// An encoded file (JPEG or PNG).
    case file(ImagePath)
    /// Raw pixels (CIFAR's binary batches).
    case pixels(RGBImage)
}

/// A labelled image dataset in one of the official layouts (the images are read on demand).
public protocol ImageDataset: AnyObject, Sendable {
    /// What and where it is (for logs and manifests).
    var description: String { get }
    var count: Int { get }
    var classes: [String] { get }
    func label(_ i: Int) -> Int32
    func item(_ i: Int) throws -> ImageItem
    /// A name for image i in messages (its path).
    func name(_ i: Int) -> String
}

extension ImageDataset {
    /// Image i decoded to RGB with `decoder` (one per thread).
    public func image(_ i: Int, decoder: ImageDecoder) throws -> RGBImage {
        switch try item(i) {
        case let .pixels(p): return p
        case let .file(url): return try decoder.decode(contentsOf: url)
        }
    }
}

/// A dataset given as a list of (file, class) pairs.
public final class FileListDataset: ImageDataset, @unchecked Sendable {
    public let description: String
    public let classes: [String]
    let files: [ImagePath]
    let labels: [Int32]
    /// What listing it noticed and worked around (symlink loops, unreadable directories).
    public let notes: [String]
    public init(description: String, classes: [String], files: [ImagePath], labels: [Int32], notes: [String] = []) throws {
        guard !files.isEmpty else { throw DataError("\(description): no images") }
        self.description = description; self.classes = classes; self.files = files; self.labels = labels; self.notes = notes
    }
    public convenience init(description: String, classes: [String], files: [URL], labels: [Int32]) throws {
        try self.init(description: description, classes: classes, files: files.map(ImagePath.init), labels: labels)
    }
    public var count: Int { files.count }
    public func label(_ i: Int) -> Int32 { labels[i] }
    public func item(_ i: Int) throws -> ImageItem { .file(files[i]) }
    public func name(_ i: Int) -> String { files[i].description }
}

/// Dataset layouts by name (`--dataset`), as upstream reads them (torchvision's classes and
/// splits): see `ImageDatasets.open`.
public enum ImageDatasets {
    /// torchvision's IMG_EXTENSIONS (files with others are not part of an ImageFolder).
    public static let imageExtensions: Set<String> = ["jpg", "jpeg", "png", "ppm", "bmp", "pgm", "tif", "tiff", "webp"]

    public static let names = ["imagenet1k", "imagefolder", "CIFAR10", "CIFAR100", "CUB200", "OxfordIIITPet", "Food101", "DTD",
                               "FGVCAircraft", "SUN397", "Places365", "StanfordCars", "STL10"]

    /// The training or evaluation split of dataset `name` under `root`. An ImageFolder's splits
    /// are its `train/` and `val/` sub-folders; `split: nil` reads `root` itself as one ImageFolder.
    public static func open(_ name: String, root: URL, train: Bool?) throws -> ImageDataset {
        guard FileManager.default.fileExists(atPath: root.path) else { throw DataError("\(root.path): no such directory (--data)") }
        let lower = name.lowercased()
        guard let train else {
            guard lower == "imagefolder" || lower == "imagenet1k" else { throw DataError("--dataset \(name): name the split (train or val)") }
            return try imageFolder(root)
        }
        switch lower {
        case "imagenet1k", "imagenet", "imagefolder": return try imageFolder(root.appendingPathComponent(train ? "train" : "val"))
        case "cifar10": return try CIFARDataset(root: root, hundred: false, train: train)
        case "cifar100": return try CIFARDataset(root: root, hundred: true, train: train)
        case "cub200": return try cub200(root, train: train)
        case "oxfordiiitpet": return try pets(root, train: train)
        case "food101": return try food101(root, train: train)
        case "dtd": return try dtd(root, train: train)
        case "fgvcaircraft": return try aircraft(root, train: train)
        case "sun397": return try sun397(root, train: train)
        case "places365": return try places365(root, train: train)
        case "stanfordcars": return try stanfordCars(root, train: train)
        case "stl10": return try STL10Dataset(root: root, train: train)
        default: throw DataError("--dataset \(name): known datasets are \(names.joined(separator: ", "))")
        }
    }

    /// torchvision's ImageFolder (see `ImageFolderListing`). A class without any image is an
    /// error, as in torchvision (which raises FileNotFoundError).
    public static func imageFolder(_ root: URL) throws -> FileListDataset {
        let listing = try ImageFolderListing(root: ImagePath(root), extensions: imageExtensions)
        return try FileListDataset(description: "ImageFolder \(ImagePath(root))", classes: listing.classes, files: listing.files,
                                   labels: listing.labels, notes: listing.notes)
    }

    /// Labels of list entries written "class/file" (Food-101, DTD), by the class's index.
    static func classPrefixLabels(_ items: [String], _ index: [String: Int32], _ base: URL) throws -> [Int32] {
        try items.map { l in
            guard let c = index[String(l.split(separator: "/").first ?? "")] else { throw DataError("\(base.path): unknown class in \(l)") }
            return c
        }
    }

    static func lines(_ url: URL) throws -> [String] {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { throw DataError("\(url.path): cannot read the split file") }
        return text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// CUB-200-2011: images.txt (id path), train_test_split.txt (id is_train),
    /// image_class_labels.txt (id class from 1), classes.txt.
    static func cub200(_ root: URL, train: Bool) throws -> FileListDataset {
        let base = FileManager.default.fileExists(atPath: root.appendingPathComponent("CUB_200_2011").path) ? root.appendingPathComponent("CUB_200_2011") : root
        func table(_ f: String) throws -> [String: String] {
            Dictionary(try lines(base.appendingPathComponent(f)).compactMap { l -> (String, String)? in
                let p = l.split(separator: " ", maxSplits: 1).map(String.init); return p.count == 2 ? (p[0], p[1]) : nil
            }, uniquingKeysWith: { a, _ in a })
        }
        let images = try table("images.txt"), split = try table("train_test_split.txt"), cls = try table("image_class_labels.txt")
        let classNames = try lines(base.appendingPathComponent("classes.txt")).map { String($0.split(separator: " ", maxSplits: 1).last ?? "") }
        let ids = images.keys.sorted { Int($0) ?? 0 < Int($1) ?? 0 }.filter { split[$0] == (train ? "1" : "0") }
        return try FileListDataset(description: "CUB-200-2011 \(train ? "train" : "test") \(base.path)", classes: classNames,
                                   files: ids.map { base.appendingPathComponent("images").appendingPathComponent(images[$0]!) },
                                   labels: try ids.map { id in
                                       guard let c = cls[id].flatMap(Int32.init), c >= 1 else { throw DataError("\(base.path): image \(id) has no class") }
                                       return c - 1
                                   })
    }

    /// Oxford-IIIT Pet: annotations/trainval.txt and test.txt ("Name_123 CLASS SPECIES BREED",
    /// class from 1), images/<name>.jpg.
    static func pets(_ root: URL, train: Bool) throws -> FileListDataset {
        let base = FileManager.default.fileExists(atPath: root.appendingPathComponent("oxford-iiit-pet").path) ? root.appendingPathComponent("oxford-iiit-pet") : root
        let rows = try lines(base.appendingPathComponent("annotations/\(train ? "trainval" : "test").txt")).filter { !$0.hasPrefix("#") }.map { $0.split(separator: " ") }
        var names: [Int32: String] = [:]
        for r in rows { if let c = Int32(r[1]) { names[c - 1] = r[0].split(separator: "_").dropLast().joined(separator: "_") } }
        return try FileListDataset(description: "Oxford-IIIT Pet \(train ? "trainval" : "test") \(base.path)",
                                   classes: (0..<Int32(names.count)).map { names[$0] ?? "\($0)" },
                                   files: rows.map { base.appendingPathComponent("images/\($0[0]).jpg") },
                                   labels: rows.map { (Int32($0[1]) ?? 1) - 1 })
    }

    /// Food-101: meta/classes.txt, meta/train.txt and test.txt ("class/id"), images/<line>.jpg.
    static func food101(_ root: URL, train: Bool) throws -> FileListDataset {
        let base = FileManager.default.fileExists(atPath: root.appendingPathComponent("food-101").path) ? root.appendingPathComponent("food-101") : root
        let classes = try lines(base.appendingPathComponent("meta/classes.txt"))
        let index = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, Int32($0)) })
        let items = try lines(base.appendingPathComponent("meta/\(train ? "train" : "test").txt"))
        return try FileListDataset(description: "Food-101 \(train ? "train" : "test") \(base.path)", classes: classes,
                                   files: items.map { base.appendingPathComponent("images/\($0).jpg") },
                                   labels: try classPrefixLabels(items, index, base))
    }

    /// DTD (partition 1, as torchvision): labels/train1.txt and val1.txt ("class/file.jpg"),
    /// images/; classes are the sorted image directories. Upstream evaluates on val.
    /// Stanford Cars in torchvision's layout: ROOT/stanford_cars/{devkit/cars_meta.mat,
    /// devkit/cars_train_annos.mat, cars_train/, cars_test_annos_withlabels.mat, cars_test/}; the
    /// annotations' `fname` and 1-based `class`, the class names from `cars_meta.mat`, read from
    /// the MATLAB files directly (`MATFile`).
    static func stanfordCars(_ root: URL, train: Bool) throws -> FileListDataset {
        let base = FileManager.default.fileExists(atPath: root.appendingPathComponent("stanford_cars").path) ? root.appendingPathComponent("stanford_cars") : root
        let meta = try MATFile(path: base.appendingPathComponent("devkit/cars_meta.mat").path)
        guard case let .cell(names, _)? = meta["class_names"] else { throw DataError("\(meta.path): no cell array `class_names`") }
        let classes = try names.map { n -> String in
            guard let s = n.string else { throw DataError("\(meta.path): a class name that is not text") }
            return s
        }
        let annotations = try MATFile(path: base.appendingPathComponent(train ? "devkit/cars_train_annos.mat" : "cars_test_annos_withlabels.mat").path)
        guard case let .structArray(fields, elements, _)? = annotations["annotations"], fields.contains("fname"), fields.contains("class") else {
            throw DataError("\(annotations.path): no struct array `annotations` with `fname` and `class`")
        }
        var files: [URL] = [], labels: [Int32] = []
        for (i, e) in elements.enumerated() {
            guard let f = e["fname"]?.string, let c = e["class"]?.scalar, c >= 1, c <= Double(classes.count), c == c.rounded() else {
                throw DataError("\(annotations.path): annotation \(i) has no file name or a class outside 1…\(classes.count)")
            }
            files.append(base.appendingPathComponent(train ? "cars_train" : "cars_test").appendingPathComponent(f))
            labels.append(Int32(c) - 1)
        }
        return try FileListDataset(description: "Stanford Cars \(train ? "train" : "test") \(base.path)", classes: classes, files: files, labels: labels)
    }

    static func dtd(_ root: URL, train: Bool) throws -> FileListDataset {
        // torchvision's root holds dtd/dtd/{images,labels} (its archive extracted into ROOT/dtd).
        let base = [root.appendingPathComponent("dtd/dtd"), root.appendingPathComponent("dtd"), root]
            .first { FileManager.default.fileExists(atPath: $0.appendingPathComponent("images").path) } ?? root
        let classes = try FileManager.default.contentsOfDirectory(atPath: base.appendingPathComponent("images").path).filter { !$0.hasPrefix(".") }.sorted()
        let index = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, Int32($0)) })
        let items = try lines(base.appendingPathComponent("labels/\(train ? "train" : "val")1.txt"))
        return try FileListDataset(description: "DTD \(train ? "train" : "val") \(base.path)", classes: classes,
                                   files: items.map { base.appendingPathComponent("images/\($0)") },
                                   labels: try classPrefixLabels(items, index, base))
    }

    /// FGVC-Aircraft (variants, as torchvision): data/variants.txt, data/images_variant_train.txt
    /// and _val.txt ("id variant name"), data/images/<id>.jpg. Upstream evaluates on val.
    static func aircraft(_ root: URL, train: Bool) throws -> FileListDataset {
        let base = FileManager.default.fileExists(atPath: root.appendingPathComponent("fgvc-aircraft-2013b").path) ? root.appendingPathComponent("fgvc-aircraft-2013b") : root
        let classes = try lines(base.appendingPathComponent("data/variants.txt"))
        let index = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, Int32($0)) })
        let items = try lines(base.appendingPathComponent("data/images_variant_\(train ? "train" : "val").txt")).map { l -> (String, String) in
            let p = l.split(separator: " ", maxSplits: 1).map(String.init); return (p[0], p.count > 1 ? p[1] : "")
        }
        return try FileListDataset(description: "FGVC-Aircraft \(train ? "train" : "val") \(base.path)", classes: classes,
                                   files: items.map { base.appendingPathComponent("data/images/\($0.0).jpg") },
                                   labels: try items.map { id, v in
                                       guard let c = index[v] else { throw DataError("\(base.path): unknown variant '\(v)' of image \(id)") }
                                       return c
                                   })
    }

    /// SUN397: ClassName.txt ("/a/abbey"), Partitions/Training_01.txt and Testing_01.txt
    /// ("/a/abbey/sun_....jpg"), images under the root.
    static func sun397(_ root: URL, train: Bool) throws -> FileListDataset {
        let base = FileManager.default.fileExists(atPath: root.appendingPathComponent("SUN397").path) ? root.appendingPathComponent("SUN397") : root
        let classes = try lines(base.appendingPathComponent("ClassName.txt"))
        let index = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, Int32($0)) })
        let items = try lines(base.appendingPathComponent("Partitions/\(train ? "Training" : "Testing")_01.txt"))
        return try FileListDataset(description: "SUN397 \(train ? "train" : "test") \(base.path)", classes: classes,
                                   files: items.map { base.appendingPathComponent(String($0.dropFirst())) },
                                   labels: try items.map { l in
                                       let cls = (l as NSString).deletingLastPathComponent
                                       guard let c = index[cls] else { throw DataError("\(base.path): unknown class of \(l)") }
                                       return c
                                   })
    }

    /// Places365 (torchvision's small/standard layout): categories_places365.txt,
    /// places365_train_standard.txt ("/a/airfield/00000001.jpg 0") under data_256_standard/ (or
    /// data_256/), places365_val.txt under val_256/.
    static func places365(_ root: URL, train: Bool) throws -> FileListDataset {
        let classes = try lines(root.appendingPathComponent("categories_places365.txt")).map { String($0.split(separator: " ").first ?? "") }
        let list = try lines(root.appendingPathComponent(train ? "places365_train_standard.txt" : "places365_val.txt")).map { $0.split(separator: " ") }
        let dir = train ? (FileManager.default.fileExists(atPath: root.appendingPathComponent("data_256_standard").path) ? "data_256_standard" : "data_256") : "val_256"
        return try FileListDataset(description: "Places365 \(train ? "train" : "val") \(root.path)", classes: classes,
                                   files: list.map { root.appendingPathComponent(dir).appendingPathComponent(String($0[0].drop { $0 == "/" })) },
                                   labels: list.map { Int32($0.last ?? "0") ?? 0 })
    }
}

/// CIFAR-10/100, torchvision's Python version (cifar-10-batches-py, cifar-100-python: the
/// pickles, read by `CIFARPickle`) or the binary version: cifar-10-batches-bin/data_batch_{1..5}.bin and test_batch.bin
/// (a label byte + 3072 channel-planar pixels each), cifar-100-binary/train.bin and test.bin (coarse
/// and fine label bytes; the fine label is the class).
public final class CIFARDataset: ImageDataset, @unchecked Sendable {
    public let description: String
    public let classes: [String]
    let data: [Data]
    let recordSize: Int
    let labelOffset: Int
    let offsets: [(Int, Int)]

    public init(root: URL, hundred: Bool, train: Bool) throws {
        let dir = root.appendingPathComponent(hundred ? "cifar-100-binary" : "cifar-10-batches-bin")
        let python = root.appendingPathComponent(hundred ? "cifar-100-python" : "cifar-10-batches-py")
        if !FileManager.default.fileExists(atPath: dir.path), FileManager.default.fileExists(atPath: python.path) {
            // torchvision's Python version: the pickles, rebuilt as the binary version's records.
            let files = hundred ? [train ? "train" : "test"] : (train ? (1...5).map { "data_batch_\($0)" } : ["test_batch"])
            let recordSize = 3072 + (hundred ? 2 : 1)
            self.recordSize = recordSize
            labelOffset = hundred ? 1 : 0
            data = try files.map { f in
                let (pixels, labels) = try CIFARPickle.batch(python.appendingPathComponent(f), labelKey: hundred ? "fine_labels" : "labels")
                var records = [UInt8](repeating: 0, count: labels.count * recordSize)
                for (n, l) in labels.enumerated() {
                    guard (0..<(hundred ? 100 : 10)).contains(l) else { throw DataError("\(python.appendingPathComponent(f).path): label \(l) of image \(n)") }
                    records[n * recordSize + (hundred ? 1 : 0)] = UInt8(l)
                    records.replaceSubrange((n * recordSize + recordSize - 3072)..<((n + 1) * recordSize), with: pixels[(n * 3072)..<((n + 1) * 3072)])
                }
                return Data(records)
            }
            offsets = data.enumerated().flatMap { i, d in (0..<(d.count / recordSize)).map { (i, $0 * recordSize) } }
            let names = try CIFARPickle.names(python.appendingPathComponent(hundred ? "meta" : "batches.meta"), key: hundred ? "fine_label_names" : "label_names")
            classes = names ?? (0..<(hundred ? 100 : 10)).map { "\($0)" }
            description = "CIFAR-\(hundred ? 100 : 10) \(train ? "train" : "test") \(python.path)"
            return
        }
        let base = FileManager.default.fileExists(atPath: dir.path) ? dir : root
        let files = hundred ? [train ? "train.bin" : "test.bin"] : (train ? (1...5).map { "data_batch_\($0).bin" } : ["test_batch.bin"])
        let recordSize = 3072 + (hundred ? 2 : 1)
        self.recordSize = recordSize
        labelOffset = hundred ? 1 : 0
        data = try files.map { f in
            let url = base.appendingPathComponent(f)
            guard let d = try? Data(contentsOf: url, options: .alwaysMapped) else { throw DataError("\(url.path): missing (the binary version of CIFAR)") }
            return d
        }
        for (f, d) in zip(files, data) where d.count % recordSize != 0 {
            throw DataError("\(base.appendingPathComponent(f).path): \(d.count) bytes is not a whole number of \(recordSize)-byte records")
        }
        offsets = data.enumerated().flatMap { i, d in (0..<(d.count / recordSize)).map { (i, $0 * recordSize) } }
        let meta = base.appendingPathComponent(hundred ? "fine_label_names.txt" : "batches.meta.txt")
        let names = (try? String(contentsOf: meta, encoding: .utf8))?.split(whereSeparator: \.isNewline).map(String.init).filter { !$0.isEmpty }
        classes = names ?? (0..<(hundred ? 100 : 10)).map { "\($0)" }
        description = "CIFAR-\(hundred ? 100 : 10) \(train ? "train" : "test") \(base.path)"
    }

    public var count: Int { offsets.count }
    public func label(_ i: Int) -> Int32 { let (f, o) = offsets[i]; return Int32(data[f][data[f].startIndex + o + labelOffset]) }
    public func name(_ i: Int) -> String { "\(description) #\(i)" }
    public func item(_ i: Int) throws -> ImageItem {
        let (f, o) = offsets[i]
        let d = data[f], start = d.startIndex + o + labelOffset + 1
        var px = [UInt8](repeating: 0, count: 3072)
        for p in 0..<1024 { for c in 0..<3 { px[p * 3 + c] = d[start + c * 1024 + p] } }
        return .pixels(RGBImage(width: 32, height: 32, pixels: px))
    }
}

/// STL-10 in torchvision's binary layout (upstream's `--dataset_name stl10`: `train` for training,
/// `test` for evaluation): stl10_binary/{train,test}_X.bin, N images of 3 × 96 × 96 bytes, each
/// channel stored column by column (torchvision transposes it); {train,test}_y.bin, labels 1–10
/// (torchvision's 0–9); class_names.txt.
public final class STL10Dataset: ImageDataset, @unchecked Sendable {
    public let description: String
    public let classes: [String]
    let pixels: Data
    let labels: Data

    public init(root: URL, train: Bool) throws {
        let dir = FileManager.default.fileExists(atPath: root.appendingPathComponent("stl10_binary").path) ? root.appendingPathComponent("stl10_binary") : root
        let split = train ? "train" : "test"
        let x = dir.appendingPathComponent("\(split)_X.bin"), y = dir.appendingPathComponent("\(split)_y.bin")
        guard let px = try? Data(contentsOf: x, options: .alwaysMapped), let lb = try? Data(contentsOf: y) else {
            throw DataError("\(dir.path): \(split)_X.bin and \(split)_y.bin are needed (STL-10's binary version, stl10_binary/; --download fetches it)")
        }
        guard px.count == lb.count * 3 * 96 * 96 else {
            throw DataError("\(x.path): \(px.count) bytes, not the \(lb.count) images of 3 × 96 × 96 its labels count")
        }
        if let bad = lb.firstIndex(where: { !(1...10).contains($0) }) {
            throw DataError("\(y.path): label \(lb[bad]) of image \(bad - lb.startIndex) (STL-10's are 1 to 10)")
        }
        pixels = px; labels = lb
        let names = (try? String(contentsOf: dir.appendingPathComponent("class_names.txt"), encoding: .utf8))?
            .split(whereSeparator: \.isNewline).map(String.init).filter { !$0.isEmpty }
        classes = names?.count == 10 ? names! : (0..<10).map { "\($0)" }
        description = "STL-10 \(split) \(dir.path)"
    }

    public var count: Int { labels.count }
    public func label(_ i: Int) -> Int32 { Int32(labels[labels.startIndex + i]) - 1 }
    public func name(_ i: Int) -> String { "\(description) #\(i)" }
    public func item(_ i: Int) throws -> ImageItem {
        let plane = 96 * 96, start = pixels.startIndex + i * 3 * plane
        var px = [UInt8](repeating: 0, count: 3 * plane)
        pixels.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let base = raw.baseAddress!.assumingMemoryBound(to: UInt8.self) + (start - pixels.startIndex)
            for c in 0..<3 {
                for x in 0..<96 { for y in 0..<96 { px[(y * 96 + x) * 3 + c] = base[c * plane + x * 96 + y] } }
            }
        }
        return .pixels(RGBImage(width: 96, height: 96, pixels: px))
    }
}
