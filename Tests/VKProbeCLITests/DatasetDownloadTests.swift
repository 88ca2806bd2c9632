import Foundation
import ProbeBackbones
import ProbeData
import ProbeTestSupport
import Testing

/// `--download`: a miniature DTD archive in torchvision's layout (`dtd-r1.0.1.tar.gz` holding
/// `dtd/images/<class>/*.jpg` and `dtd/labels/{train,val,test}1.txt`), made by Python's `tarfile`
/// and served from 127.0.0.1 under torchvision's URL path, its MD5 computed by Python's `hashlib`
/// (`VKPROBE_DATASET_CHECKSUMS`); fetched, checked, extracted into torchvision's root layout
/// (`ROOT/dtd/dtd/…`), and trained on; a wrong checksum is refused with nothing kept.
@Suite(.serialized) struct DatasetDownloadTests {
    func python(_ script: String, _ args: [String]) throws -> (Process, Pipe) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        p.arguments = ["-c", script] + args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        return (p, out)
    }

    /// SIGKILL: a child of the test runner may inherit a mask that blocks SIGTERM.
    func stop(_ p: Process) { if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() } }

    /// Python's HTTP server over `dir` on 127.0.0.1, and its port.
    func serve(_ dir: URL) throws -> (Process, Int) {
        let script = """
        import functools, http.server, sys
        h = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
        http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
        s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), h)
        print(s.server_address[1], flush=True)
        s.serve_forever()
        """
        let (server, out) = try python(script, [dir.path])
        var line = Data()
        while let b = try out.fileHandleForReading.read(upToCount: 1), !b.isEmpty, b != Data("\n".utf8) { line += b }
        guard let port = Int(String(decoding: line, as: UTF8.self)) else { stop(server); throw DataError("the test's HTTP server did not start") }
        return (server, port)
    }

    /// A tiny random ViT (JSON configuration and timm-named weights) under `dir`.
    func tinyViT(_ dir: URL) throws -> (model: String, weights: String) {
        let json = #"{"patch_size": 8, "embed_dim": 32, "depth": 2, "num_heads": 2, "img_size": 32}"#
        let model = dir.appendingPathComponent("tiny.json").path
        try json.write(toFile: model, atomically: true, encoding: .utf8)
        let weights = dir.appendingPathComponent("tiny.safetensors").path
        try ViTWeights.random(try ViTConfig.fromTimmArguments(json), seed: 1).write(to: weights)
        return (model, weights)
    }

    /// `linprobe --model franca_vitl14 --franca_weights LAION` without --finetune, as upstream's
    /// README writes it: Franca's release checkpoint fetched once into the cache (from the test's
    /// server standing in for GitHub, `VKPROBE_RELEASE_MIRROR`), then converted into the run folder
    /// (`VKPROBE_PYTHON`: a stand-in recording its arguments, as the converter needs torch); a
    /// second run reuses the cached file with the server gone.
    @Test func francasReleaseCheckpointIsFetchedOnceThenConverted() throws {
        let dir = try temporaryDirectory("franca-release")
        let served = dir.appendingPathComponent("www/valeoai/Franca/releases/download/v1.0.0")
        try FileManager.default.createDirectory(at: served, withIntermediateDirectories: true)
        try Data("a franca pickle".utf8).write(to: served.appendingPathComponent("franca_vitl14_Laion600M.pth"))
        let stub = dir.appendingPathComponent("python-stub")
        try "#!/bin/sh\necho \"$@\" >> \"\(dir.path)/converter-calls\"\ncp \"$2\" \"$3\"\n".write(to: stub, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: stub.path)
        let env = ["VKPROBE_PYTHON": stub.path, "XDG_CACHE_HOME": dir.appendingPathComponent("cache").path]
        let args = ["linprobe", "--model", "franca_vitl14", "--franca_weights", "LAION", "--cls_features", "ep", "--data_path", dir.appendingPathComponent("nodata").path,
                    "--output_dir", dir.appendingPathComponent("run").path]
        let cached = dir.appendingPathComponent("cache/vkprobe/releases/github.com/franca_vitl14_Laion600M.pth")
        let (server, port) = try serve(dir.appendingPathComponent("www"))
        let first = try runVkprobe(args, environment: env.merging(["VKPROBE_RELEASE_MIRROR": "http://127.0.0.1:\(port)"]) { a, _ in a })
        stop(server)
        #expect(first.stdout.contains("download: https://github.com/valeoai/Franca/releases/download/v1.0.0/franca_vitl14_Laion600M.pth"), "\(first.stdout) \(first.stderr)")
        #expect(try String(contentsOf: cached, encoding: .utf8) == "a franca pickle")
        let calls = try String(contentsOf: dir.appendingPathComponent("converter-calls"), encoding: .utf8)
        #expect(calls.contains("convert_checkpoint.py \(cached.path) \(dir.path)/run/converted-franca_vitl14_Laion600M.safetensors"), "\(calls)")
        // The stand-in's "weights" are not a checkpoint: the run stops there, naming the file (the
        // row golden holds a real Franca checkpoint's path end to end).
        #expect(first.status != 0 && first.stderr.contains("converted-franca_vitl14_Laion600M.safetensors"), "\(first.stderr)")
        let second = try runVkprobe(args, environment: env)
        #expect(!second.stderr.contains("cannot reach") && !second.stderr.contains("127.0.0.1"), "the cached checkpoint was fetched again: \(second.stderr)")
    }

    @Test func downloadsExtractsAndTrainsOnDTD() throws {
        let dir = try temporaryDirectory("download")
        // The archive's content: three classes, torchvision's split files.
        let stage = dir.appendingPathComponent("stage")
        try writeImageFolder(stage.appendingPathComponent("raw"), splits: [("all", 6)], classes: ["banded", "dotted", "zigzagged"], size: 40, seed: 9)
        let make = """
        import hashlib, os, shutil, sys, tarfile
        stage, served = sys.argv[1], sys.argv[2]
        src = os.path.join(stage, 'raw', 'all')
        dtd = os.path.join(stage, 'dtd')
        lines = {'train1.txt': [], 'val1.txt': [], 'test1.txt': []}
        for c in sorted(os.listdir(src)):
            os.makedirs(os.path.join(dtd, 'images', c))
            for i, f in enumerate(sorted(os.listdir(os.path.join(src, c)))):
                shutil.copy(os.path.join(src, c, f), os.path.join(dtd, 'images', c, f))
                lines[['train1.txt', 'val1.txt', 'test1.txt', 'train1.txt', 'val1.txt', 'train1.txt'][i]].append(f'{c}/{f}')
        os.makedirs(os.path.join(dtd, 'labels'))
        for name, items in lines.items():
            open(os.path.join(dtd, 'labels', name), 'w').write('\\n'.join(items) + '\\n')
        out = os.path.join(served, '~vgg/data/dtd/download')
        os.makedirs(out)
        archive = os.path.join(out, 'dtd-r1.0.1.tar.gz')
        with tarfile.open(archive, 'w:gz') as t:
            t.add(dtd, arcname='dtd')
        print(hashlib.md5(open(archive, 'rb').read()).hexdigest())
        """
        let served = dir.appendingPathComponent("served")
        let (maker, makerOut) = try python(make, [stage.path, served.path])
        let md5 = String(decoding: makerOut.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        maker.waitUntilExit()
        #expect(maker.terminationStatus == 0 && md5.count == 32)
        let (server, port) = try serve(served)
        defer { stop(server) }
        let checksums = dir.appendingPathComponent("checksums.txt")
        try "dtd-r1.0.1.tar.gz \(md5)\n".write(to: checksums, atomically: true, encoding: .utf8)
        // A tiny random ViT.
        let (model, weights) = try tinyViT(dir)
        let root = dir.appendingPathComponent("root")
        func train(_ env: [String: String], _ out: String) throws -> CLIRun {
            try runVkprobe(["train", "--model", model, "--weights", weights, "--data", root.path, "--dataset", "DTD", "--download", "--image-size", "32",
                            "--heads", "lp_gap", "--epochs", "1", "--global-batch-size", "4", "--warmup-epochs", "0", "--output", dir.appendingPathComponent(out).path],
                           environment: env)
        }
        let env = ["VKPROBE_DATASET_MIRROR": "http://127.0.0.1:\(port)", "VKPROBE_DATASET_CHECKSUMS": checksums.path]
        // A wrong checksum first: refused, nothing kept.
        let badSums = dir.appendingPathComponent("bad.txt")
        try "dtd-r1.0.1.tar.gz 00000000000000000000000000000000\n".write(to: badSums, atomically: true, encoding: .utf8)
        let bad = try train(env.merging(["VKPROBE_DATASET_CHECKSUMS": badSums.path]) { $1 }, "bad")
        #expect(bad.status != 0 && bad.stderr.contains("MD5") && bad.stderr.contains("removed"), "\(bad.stderr)")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("dtd").path)) ?? []).isEmpty)
        // Fetched, checked, extracted where torchvision puts it, trained on.
        let run = try train(env, "run")
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("extracted"), "\(run.stderr)")
        #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent("dtd/dtd/labels/train1.txt").path))
        #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent("dtd/dtd-r1.0.1.tar.gz").path))
        // Done once: a second run needs no server.
        stop(server)
        let again = try train([:], "again")
        #expect(again.status == 0 && !again.stderr.contains("downloading"), "\(again.stderr)")
    }

    /// CIFAR-100 as torchvision ships it (`cifar-100-python.tar.gz`: pickled dicts with a NumPy
    /// `data` array, `fine_labels`, and `meta`'s `fine_label_names`), miniature, made by Python's
    /// pickle (protocol 2, as NumPy arrays and bytes go through `_codecs.encode` there, and 4) and
    /// served locally: `--download` fetches it into torchvision's root layout, the pickles are read
    /// (labels, names and channel-planar pixels as written), and training runs on it.
    @Test func cifar100FromTorchvisionsArchive() throws {
        let dir = try temporaryDirectory("cifar-download")
        let served = dir.appendingPathComponent("served")
        let make = """
        import hashlib, io, os, pickle, sys, tarfile, numpy as np
        served = sys.argv[1]
        rng = np.random.RandomState(3)
        def batch(n, protocol):
            d = {'filenames': ['img_%d.png' % i for i in range(n)], 'batch_label': 'training batch 1 of 1',
                 'fine_labels': [int(x) for x in rng.randint(0, 100, n)], 'coarse_labels': [int(x) for x in rng.randint(0, 20, n)],
                 'data': rng.randint(0, 256, (n, 3072)).astype(np.uint8)}
            return d, pickle.dumps(d, protocol=protocol)
        train, train_bytes = batch(24, 2)
        test, test_bytes = batch(8, 4)
        meta = pickle.dumps({'fine_label_names': ['class_%02d' % i for i in range(100)], 'coarse_label_names': ['c%d' % i for i in range(20)]}, protocol=2)
        out = os.path.join(served, '~kriz'); os.makedirs(out)
        archive = os.path.join(out, 'cifar-100-python.tar.gz')
        with tarfile.open(archive, 'w:gz') as t:
            for name, data in [('train', train_bytes), ('test', test_bytes), ('meta', meta)]:
                info = tarfile.TarInfo('cifar-100-python/' + name); info.size = len(data)
                t.addfile(info, io.BytesIO(data))
        print(hashlib.md5(open(archive, 'rb').read()).hexdigest())
        print(' '.join(map(str, train['fine_labels'])))
        print(' '.join(map(str, train['data'][5, [0, 1, 1024, 2048, 3071]])))
        """
        let (maker, makerOut) = try python(make, [served.path])
        let printed = String(decoding: makerOut.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).split(separator: "\n").map(String.init)
        maker.waitUntilExit()
        #expect(maker.terminationStatus == 0 && printed.count == 3)
        guard printed.count == 3 else { return }
        let (server, port) = try serve(served)
        defer { stop(server) }
        let sums = dir.appendingPathComponent("sums.txt")
        try "cifar-100-python.tar.gz \(printed[0])\n".write(to: sums, atomically: true, encoding: .utf8)
        let (model, weights) = try tinyViT(dir)
        let root = dir.appendingPathComponent("root")
        let run = try runVkprobe(["train", "--model", model, "--weights", weights, "--data", root.path, "--dataset", "CIFAR100", "--download",
                                  "--image-size", "32", "--heads", "lp_gap", "--epochs", "1", "--global-batch-size", "8", "--warmup-epochs", "0",
                                  "--output", dir.appendingPathComponent("run").path],
                                 environment: ["VKPROBE_DATASET_MIRROR": "http://127.0.0.1:\(port)", "VKPROBE_DATASET_CHECKSUMS": sums.path])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent("cifar-100-python/train").path))
        // What the pickles hold, as Python wrote it.
        let train = try ImageDatasets.open("CIFAR100", root: root, train: true)
        #expect(train.count == 24 && train.classes.count == 100 && train.classes[7] == "class_07")
        #expect((0..<24).map { String(train.label($0)) }.joined(separator: " ") == printed[1])
        guard case let .pixels(img) = try train.item(5) else { Issue.record("CIFAR items are pixels"); return }
        // data[5][0] is R of pixel 0, [1] R of pixel 1, [1024] G of pixel 0, [2048] B of pixel 0, [3071] B of pixel 1023.
        let px = img.pixels
        #expect("\(px[0]) \(px[3]) \(px[1]) \(px[2]) \(px[1023 * 3 + 2])" == printed[2])
        #expect(try ImageDatasets.open("CIFAR100", root: root, train: false).count == 8)
    }

    /// An archive entry that would land outside the destination is refused by name.
    @Test func aTraversingEntryIsRefused() throws {
        let dir = try temporaryDirectory("evil-archive")
        let make = """
        import io, sys, tarfile
        with tarfile.open(sys.argv[1], 'w:gz') as t:
            data = b'x'
            info = tarfile.TarInfo('dtd/../../evil.txt'); info.size = 1
            t.addfile(info, io.BytesIO(data))
        """
        let archive = dir.appendingPathComponent("served/~vgg/data/dtd/download/dtd-r1.0.1.tar.gz")
        try FileManager.default.createDirectory(at: archive.deletingLastPathComponent(), withIntermediateDirectories: true)
        let (maker, _) = try python(make, [archive.path])
        maker.waitUntilExit()
        // Put where a finished download would be: extraction runs on it (no checksum for this test's file).
        let root = dir.appendingPathComponent("root")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("dtd"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: archive, to: root.appendingPathComponent("dtd/dtd-r1.0.1.tar.gz"))
        let sums = dir.appendingPathComponent("sums.txt")
        try "dtd-r1.0.1.tar.gz -\n".write(to: sums, atomically: true, encoding: .utf8)
        let (model, weights) = try tinyViT(dir)
        let r = try runVkprobe(["extract", "--model", model, "--weights", weights, "--data", root.path, "--dataset", "DTD", "--image-size", "32",
                                "--download", "--output", dir.appendingPathComponent("out").path], environment: ["VKPROBE_DATASET_CHECKSUMS": sums.path])
        #expect(r.status != 0 && r.stderr.contains("evil.txt") && r.stderr.contains("outside"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("evil.txt").path))
    }
}
