import Foundation
import ProbeData
import ProbeTestSupport
import Testing

/// MAT-files written by SciPy's `savemat` (compressed and not), read by `MATFile`; and Stanford
/// Cars in torchvision's layout with SciPy-written devkit files, read as a dataset.
@Suite struct MATFileTests {
    /// Runs /usr/bin/python3 with SciPy; nil (and no failure unless `make test` requires SciPy) without it.
    func scipy(_ script: String, _ args: [String]) throws -> Bool? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        p.arguments = ["-c", "import scipy.io"]
        p.standardError = FileHandle.nullDevice
        try p.run(); p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            #expect(ProcessInfo.processInfo.environment["VKPROBE_REQUIRE_SCIPY"] != "1", "python3-scipy is required (make test installs it)")
            return nil
        }
        let r = Process()
        r.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        r.arguments = ["-c", script] + args
        try r.run(); r.waitUntilExit()
        return r.terminationStatus == 0
    }

    @Test func readsWhatSciPyWrites() throws {
        let dir = try temporaryDirectory("mat")
        let script = """
        import sys, numpy as np, scipy.io as sio
        d = sys.argv[1]
        names = np.empty(3, dtype=object); names[:] = ['AM General Hummer SUV 2000', 'Acura RL Sedan 2012', 'Zöe Ünicode 2001']
        sio.savemat(d + '/meta.mat', {'class_names': names.reshape(1, 3)})
        rec = np.zeros(4, dtype=[('bbox_x1', 'O'), ('class', 'O'), ('fname', 'O')])
        for i in range(4):
            rec[i] = (np.array([[10 + i]], dtype=np.uint8), np.array([[i % 3 + 1]], dtype=np.uint8), '%05d.jpg' % (i + 1))
        sio.savemat(d + '/annos.mat', {'annotations': rec.reshape(1, 4), 'grid': np.arange(6, dtype=np.float64).reshape(2, 3),
                                       'rows': np.array(['ab', 'cd'])}, do_compression=True)
        """
        guard let ok = try scipy(script, [dir.path]) else { return }
        #expect(ok)
        let meta = try MATFile(path: dir.appendingPathComponent("meta.mat").path)
        guard case let .cell(names, dims)? = meta["class_names"] else { Issue.record("no class_names: \(meta.variables)"); return }
        #expect(dims == [1, 3] && names.map(\.string) == ["AM General Hummer SUV 2000", "Acura RL Sedan 2012", "Zöe Ünicode 2001"])
        let annos = try MATFile(path: dir.appendingPathComponent("annos.mat").path)
        guard case let .structArray(fields, elements, adims)? = annos["annotations"] else { Issue.record("no annotations: \(annos.variables.keys)"); return }
        #expect(fields == ["bbox_x1", "class", "fname"] && adims == [1, 4])
        #expect(elements.map { $0["fname"]?.string } == ["00001.jpg", "00002.jpg", "00003.jpg", "00004.jpg"])
        #expect(elements.map { $0["class"]?.scalar } == [1, 2, 3, 1] && elements.map { $0["bbox_x1"]?.scalar } == [10, 11, 12, 13])
        // Column-major numbers, multi-row char arrays.
        #expect(annos["grid"] == .numeric([0, 3, 1, 4, 2, 5], dims: [2, 3]))
        #expect(annos["rows"]?.string == "ab\ncd")
        // A damaged file is refused, never a crash.
        var data = try Data(contentsOf: dir.appendingPathComponent("annos.mat"))
        data = data.prefix(data.count - 20)
        try data.write(to: dir.appendingPathComponent("cut.mat"))
        #expect(throws: DataError.self) { try MATFile(path: dir.appendingPathComponent("cut.mat").path) }
    }

    @Test func stanfordCarsInTorchvisionsLayout() throws {
        let dir = try temporaryDirectory("cars")
        let base = dir.appendingPathComponent("stanford_cars")
        try writeImageFolder(dir.appendingPathComponent("raw"), splits: [("x", 3)], classes: ["a"], size: 24, seed: 5)
        let script = """
        import os, shutil, sys, numpy as np, scipy.io as sio
        base, raw = sys.argv[1], sys.argv[2]
        os.makedirs(base + '/devkit'); os.makedirs(base + '/cars_train'); os.makedirs(base + '/cars_test')
        names = np.empty(2, dtype=object); names[:] = ['Car One 2010', 'Car Two 2011']
        sio.savemat(base + '/devkit/cars_meta.mat', {'class_names': names.reshape(1, 2)})
        files = sorted(os.listdir(raw))
        def annos(path, folder, classes):
            rec = np.zeros(len(files), dtype=[('fname', 'O'), ('class', 'O')])
            for i, f in enumerate(files):
                shutil.copy(os.path.join(raw, f), os.path.join(base, folder, f))
                rec[i] = (f, np.array([[classes[i]]], dtype=np.uint8))
            sio.savemat(path, {'annotations': rec.reshape(1, -1)})
        annos(base + '/devkit/cars_train_annos.mat', 'cars_train', [1, 2, 2])
        annos(base + '/cars_test_annos_withlabels.mat', 'cars_test', [2, 1, 1])
        """
        guard let ok = try scipy(script, [base.path, dir.appendingPathComponent("raw/x/a").path]) else { return }
        #expect(ok)
        let train = try ImageDatasets.open("StanfordCars", root: dir, train: true)
        let test = try ImageDatasets.open("StanfordCars", root: dir, train: false)
        #expect(train.count == 3 && test.count == 3)
        #expect((0..<3).map { train.label($0) } == [0, 1, 1] && (0..<3).map { test.label($0) } == [1, 0, 0])
        #expect(train.classes == ["Car One 2010", "Car Two 2011"])
    }
}
