import Foundation
import ProbeTestSupport
import SafeTensors
import Testing
@testable import ProbeData

/// Each layout read from a miniature copy of its official file structure.
@Suite struct ImageDatasetTests {
    func write(_ root: URL, _ files: [String: String]) throws {
        for (path, text) in files {
            let url = root.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: url)
        }
    }

    /// STL-10 (upstream's `--dataset_name stl10`) from a miniature of its binary version, against
    /// what torchvision's `datasets.STL10` reads from the same files (Tests/Goldens/datasets,
    /// Bench/tools/make_dataset_goldens.py): every pixel, label and class name.
    @Test func stl10IsWhatTorchvisionReads() throws {
        let golden = try SafeTensorsFile(path: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Goldens/datasets/stl10.safetensors").path)
        let root = try temporaryDirectory("stl10")
        let dir = root.appendingPathComponent("stl10_binary")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for f in ["train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin", "class_names.txt"] {
            try golden.withBytes("file.\(f)") { Data($0) }.write(to: dir.appendingPathComponent(f))
        }
        for split in ["train", "test"] {
            let ds = try ImageDatasets.open("STL10", root: root, train: split == "train")
            let want = try golden.withBytes("expected.\(split).images") { Array($0) }
            let labels = try golden.entry("expected.\(split).labels").shape[0]
            #expect(ds.count == labels && ds.classes.first == "airplane" && ds.classes.count == 10)
            var got: [UInt8] = []
            for i in 0..<ds.count {
                guard case let .pixels(img) = try ds.item(i) else { Issue.record("STL-10 item \(i) is not pixels"); continue }
                #expect(img.width == 96 && img.height == 96)
                got += img.pixels
            }
            let differing = zip(got, want).filter { $0 != $1 }.count + abs(got.count - want.count)
            #expect(differing == 0, "\(split): \(differing) of \(want.count) pixel values differ from torchvision's")
            let wantLabels = try golden.withBytes("expected.\(split).labels") { b in (0..<labels).map { i in Int32(b.load(fromByteOffset: i * 8, as: Int64.self)) } }
            #expect((0..<ds.count).map(ds.label) == wantLabels)
        }
        // A truncated file is refused naming it.
        try Data([1, 2, 3]).write(to: dir.appendingPathComponent("test_X.bin"))
        #expect { try ImageDatasets.open("STL10", root: root, train: false) } throws: { "\($0)".contains("test_X.bin") }
    }

    @Test func imageFolderSortsClassesAndFiltersExtensions() throws {
        let root = try temporaryDirectory("imagefolder")
        try write(root, ["train/zebra/b.jpg": "", "train/zebra/a.JPEG": "", "train/ant/x/deep.png": "", "train/ant/notes.txt": "",
                         "val/ant/1.jpg": "", "val/zebra/2.jpg": ""])
        let train = try ImageDatasets.open("imagefolder", root: root, train: true)
        #expect(train.classes == ["ant", "zebra"])
        #expect(train.count == 3)
        #expect((0..<3).map { URL(fileURLWithPath: train.name($0)).lastPathComponent } == ["deep.png", "a.JPEG", "b.jpg"])
        #expect((0..<3).map(train.label) == [0, 1, 1])
        #expect(try ImageDatasets.open("imagenet1k", root: root, train: false).count == 2)
        // An empty class folder is refused (torchvision raises too), naming it.
        try FileManager.default.createDirectory(at: root.appendingPathComponent("train/empty"), withIntermediateDirectories: true)
        #expect { try ImageDatasets.open("imagefolder", root: root, train: true) } throws: { "\($0)".contains("empty") }
        #expect { try ImageDatasets.open("imagefolder", root: root.appendingPathComponent("nowhere"), train: true) } throws: { "\($0)".contains("nowhere") }
        #expect { try ImageDatasets.open("coco", root: root, train: true) } throws: { "\($0)".contains("known datasets") }
    }

    /// Names that are not UTF-8, symlinked class and sub-directories, a symlink loop, a broken
    /// link, hidden files: the listing is torchvision's (`find_classes` and `make_dataset`, run
    /// here in Python on the same tree), except that the loop is followed once and reported
    /// where `os.walk(followlinks=True)` repeats it until the path is too long.
    @Test func imageFolderListsAsTorchvisionDoes() throws {
        let root = try temporaryDirectory("imagefolder-bytes")
        let script = #"""
        import os, sys
        root = os.fsencode(sys.argv[1]); out = os.fsencode(sys.argv[2])
        def touch(p): os.makedirs(os.path.dirname(p), exist_ok=True); open(p, "wb").close()
        for p in [b"a\xe9/img\xff.jpg", b"a\xe9/zz.jpg", b"a\xe9/sub/z.png", b"a\xe9/sub2/.hidden.jpg", b"a\xe9/Sub/q.PNG",
                  b"b/x.JPG", b"b/y.txt", b"b/\xc3\xa9t\xc3\xa9.jpeg", b"b/e.jpeg", b"b/d/deeper/k.webp"]:
            touch(os.path.join(root, p))
        touch(os.path.join(out, b"elsewhere/linked.jpg"))
        os.symlink(os.path.join(out, b"elsewhere"), os.path.join(root, b"c-link"))
        os.symlink(b".", os.path.join(root, b"b/loop"))
        os.symlink(b"../..", os.path.join(root, b"b/d/up"))
        os.symlink(b"nowhere.jpg", os.path.join(root, b"b/broken.jpg"))
        os.symlink(os.path.join(out, b"elsewhere"), os.path.join(root, b"b/d/linked-dir"))
        # torchvision's find_classes and make_dataset (str paths: undecodable bytes surrogate-escaped).
        d = os.fsdecode(root)
        classes = sorted(e.name for e in os.scandir(d) if e.is_dir())
        ext = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
        for c in classes:
            walked = []
            for r, dirs, names in os.walk(os.path.join(d, c), followlinks=True):
                dirs[:] = [x for x in dirs if x not in ("loop", "up")]  # the loops, which os.walk would repeat ~40 deep
                walked.append((r, dirs, names))
            for r, _, names in sorted(walked):
                for n in sorted(names):
                    if n.lower().endswith(ext):
                        print(classes.index(c), os.fsencode(os.path.join(r, n)).hex())
        """#
        let scratch = try temporaryDirectory("imagefolder-elsewhere")
        let run = try runProgram(URL(fileURLWithPath: "/usr/bin/python3"), ["-c", script, root.path, scratch.path], environment: ProcessInfo.processInfo.environment)
        #expect(run.status == 0, "\(run.stderr)")
        let expected = run.stdout.split(separator: "\n").map { line -> (Int32, [UInt8]) in
            let p = line.split(separator: " ")
            let hex = Array(p[1].utf8)
            let bytes = stride(from: 0, to: hex.count, by: 2).map { UInt8(String(decoding: hex[$0..<($0 + 2)], as: UTF8.self), radix: 16)! }
            return (Int32(p[0])!, bytes)
        }
        let ds = try ImageDatasets.imageFolder(root)
        #expect(ds.classes == ["a\\xE9", "b", "c-link"])
        #expect(ds.files.map(\.bytes) == expected.map(\.1))
        #expect((0..<ds.count).map(ds.label) == expected.map(\.0))
        #expect(expected.count == 12)
        #expect(ds.notes.count == 2 && ds.notes.allSatisfy { $0.contains("symlink loop") }, "\(ds.notes)")
        #expect(ds.notes.contains { $0.hasSuffix("b/loop: a symlink loop (leads back to a directory above it), not followed") })
        // A non-UTF-8 name is opened (and named with escapes when it cannot be).
        let bad = try #require(ds.files.firstIndex { $0.bytes.last(where: { _ in true }) == 0x67 && $0.bytes.contains(0xFF) })
        #expect(ds.name(bad).hasSuffix("a\\xE9/img\\xFF.jpg"))
        #expect { try ImageDecoder().decode(contentsOf: ds.files[bad]) } throws: { "\($0)".contains("not a JPEG or PNG file (0 bytes") }
        #expect { try ImageDecoder().decode(contentsOf: ds.files[ds.files.firstIndex { $0.description.hasSuffix("broken.jpg") }!]) } throws: { "\($0)".contains("cannot open") }
    }

    @Test func cifarBinaryRecords() throws {
        let root = try temporaryDirectory("cifar")
        let dir = root.appendingPathComponent("cifar-10-batches-bin")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        func record(_ label: UInt8, _ r: UInt8, _ g: UInt8, _ b: UInt8) -> [UInt8] {
            [label] + [UInt8](repeating: r, count: 1024) + [UInt8](repeating: g, count: 1024) + [UInt8](repeating: b, count: 1024)
        }
        for k in 1...5 { try Data(record(UInt8(k), 10, 20, 30) + record(9, 1, 2, 3)).write(to: dir.appendingPathComponent("data_batch_\(k).bin")) }
        try Data(record(4, 7, 8, 9)).write(to: dir.appendingPathComponent("test_batch.bin"))
        let train = try ImageDatasets.open("CIFAR10", root: root, train: true)
        #expect(train.count == 10)
        #expect((0..<4).map(train.label) == [1, 9, 2, 9])
        guard case let .pixels(img) = try train.item(1) else { Issue.record("pixels expected"); return }
        #expect(img.width == 32 && img.pixels.prefix(6) == [1, 2, 3, 1, 2, 3])
        #expect(try ImageDatasets.open("cifar10", root: root, train: false).label(0) == 4)
        try Data([1, 2, 3]).write(to: dir.appendingPathComponent("test_batch.bin"))
        #expect { try ImageDatasets.open("CIFAR10", root: root, train: false) } throws: { "\($0)".contains("3073-byte records") }
        // CIFAR-100: coarse then fine label; the fine one is the class.
        let hundred = root.appendingPathComponent("cifar-100-binary")
        try FileManager.default.createDirectory(at: hundred, withIntermediateDirectories: true)
        try Data([3, 77] + [UInt8](repeating: 0, count: 3072)).write(to: hundred.appendingPathComponent("train.bin"))
        #expect(try ImageDatasets.open("CIFAR100", root: root, train: true).label(0) == 77)
    }

    @Test func splitFileLayouts() throws {
        let root = try temporaryDirectory("layouts")
        try write(root, [
            "CUB_200_2011/images.txt": "1 001.Albatross/a.jpg\n2 002.Auklet/b.jpg\n3 001.Albatross/c.jpg\n",
            "CUB_200_2011/train_test_split.txt": "1 1\n2 0\n3 1\n",
            "CUB_200_2011/image_class_labels.txt": "1 1\n2 2\n3 1\n",
            "CUB_200_2011/classes.txt": "1 001.Albatross\n2 002.Auklet\n",
        ])
        let cub = try ImageDatasets.open("CUB200", root: root, train: true)
        #expect(cub.count == 2 && cub.classes == ["001.Albatross", "002.Auklet"] && cub.label(1) == 0)
        #expect(cub.name(1).hasSuffix("CUB_200_2011/images/001.Albatross/c.jpg"))
        #expect(try ImageDatasets.open("CUB200", root: root, train: false).label(0) == 1)

        try write(root, ["oxford-iiit-pet/annotations/trainval.txt": "Abyssinian_1 1 1 1\nyorkshire_terrier_9 37 2 25\n",
                         "oxford-iiit-pet/annotations/test.txt": "Abyssinian_2 1 1 1\n"])
        let pets = try ImageDatasets.open("OxfordIIITPet", root: root, train: true)
        #expect(pets.count == 2 && pets.label(1) == 36 && pets.name(0).hasSuffix("images/Abyssinian_1.jpg"))

        try write(root, ["food-101/meta/classes.txt": "apple_pie\nramen\n", "food-101/meta/train.txt": "ramen/123\napple_pie/9\n",
                         "food-101/meta/test.txt": "ramen/5\n"])
        let food = try ImageDatasets.open("Food101", root: root, train: true)
        #expect((0..<2).map(food.label) == [1, 0] && food.name(0).hasSuffix("images/ramen/123.jpg"))

        try write(root, ["dtd/images/banded/x.jpg": "", "dtd/images/woven/y.jpg": "", "dtd/labels/train1.txt": "woven/y.jpg\nbanded/x.jpg\n",
                         "dtd/labels/val1.txt": "banded/x.jpg\n"])
        let dtd = try ImageDatasets.open("DTD", root: root, train: true)
        #expect((0..<2).map(dtd.label) == [1, 0] && dtd.classes == ["banded", "woven"])

        try write(root, ["fgvc-aircraft-2013b/data/variants.txt": "707-320\nA300B4\n",
                         "fgvc-aircraft-2013b/data/images_variant_train.txt": "0034309 A300B4\n1025794 707-320\n",
                         "fgvc-aircraft-2013b/data/images_variant_val.txt": "0000001 A300B4\n"])
        let air = try ImageDatasets.open("FGVCAircraft", root: root, train: true)
        #expect((0..<2).map(air.label) == [1, 0] && air.name(0).hasSuffix("data/images/0034309.jpg"))

        try write(root, ["SUN397/ClassName.txt": "/a/abbey\n/b/bakery/shop\n",
                         "SUN397/Partitions/Training_01.txt": "/b/bakery/shop/sun_1.jpg\n/a/abbey/sun_2.jpg\n",
                         "SUN397/Partitions/Testing_01.txt": "/a/abbey/sun_3.jpg\n"])
        let sun = try ImageDatasets.open("SUN397", root: root, train: true)
        #expect((0..<2).map(sun.label) == [1, 0] && sun.name(0).hasSuffix("SUN397/b/bakery/shop/sun_1.jpg"))

        let places = root.appendingPathComponent("places")
        try write(places, ["categories_places365.txt": "/a/airfield 0\n/b/bakery 1\n",
                           "places365_train_standard.txt": "/b/bakery/00000001.jpg 1\n", "places365_val.txt": "Places365_val_00000001.jpg 0\n"])
        let pl = try ImageDatasets.open("Places365", root: places, train: true)
        #expect(pl.label(0) == 1 && pl.name(0).hasSuffix("data_256/b/bakery/00000001.jpg") && pl.classes == ["/a/airfield", "/b/bakery"])
        #expect(try ImageDatasets.open("Places365", root: places, train: false).name(0).hasSuffix("val_256/Places365_val_00000001.jpg"))
    }

    /// Fashion-MNIST's IDX reader checks its sizes (a hostile header never traps).
    @Test func idxFilesAreChecked() throws {
        func header(_ magic: UInt32, _ dims: [UInt32]) -> [UInt8] {
            ([magic] + dims).flatMap { v in (0..<4).reversed().map { UInt8((v >> (8 * UInt32($0))) & 0xFF) } }
        }
        let ok = header(0x0803, [2, 28, 28]) + [UInt8](repeating: 5, count: 2 * 784)
        #expect(try FashionMNIST.idx(ok, path: "ok", magic: 0x0803, dims: 3).dims == [2, 28, 28])
        #expect(throws: DataError.self) { try FashionMNIST.idx(header(0x0803, [0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF]), path: "huge", magic: 0x0803, dims: 3) }
        #expect(throws: DataError.self) { try FashionMNIST.idx(Array(ok.dropLast()), path: "short", magic: 0x0803, dims: 3) }
        #expect(throws: DataError.self) { try FashionMNIST.idx(header(0x0801, [2]) + [1, 2], path: "magic", magic: 0x0803, dims: 3) }
        #expect(throws: DataError.self) { try FashionMNIST.idx([0, 0], path: "tiny", magic: 0x0803, dims: 3) }
    }
}
