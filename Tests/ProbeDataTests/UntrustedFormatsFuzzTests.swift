import Foundation
import ProbeTestSupport
import Testing
@testable import ProbeData

/// The MAT-file and pickle readers take files from the internet: mutated and truncated copies of
/// real ones (written by SciPy and Python's pickle) are read or refused, never a crash or a hang.
@Suite struct UntrustedFormatsFuzzTests {
    func python(_ script: String, _ args: [String]) throws -> Bool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        p.arguments = ["-c", script] + args
        p.standardError = FileHandle.nullDevice
        try p.run(); p.waitUntilExit()
        return p.terminationStatus == 0
    }

    func mutants(of data: Data, count: Int, seed: UInt64) -> [Data] {
        var rng = FuzzRNG(state: seed)
        return (0..<count).map { k in
            var d = [UInt8](data)
            if k % 5 == 4 { return Data(d.prefix(rng.below(d.count))) }   // truncated
            for _ in 0..<(1 + rng.below(4)) {
                let at = rng.below(d.count)
                d[at] = k % 3 == 0 ? UInt8(rng.below(256)) : (k % 3 == 1 ? 0xFF : 0x00)
            }
            return Data(d)
        }
    }

    @Test func mutatedPicklesAreReadOrRefused() throws {
        let dir = try temporaryDirectory("pickle-fuzz")
        let ok = try python("""
        import pickle, sys, numpy as np
        d = {'data': np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072), 'fine_labels': [3, 7], 'filenames': ['a.png', 'b.png']}
        open(sys.argv[1] + '/p2', 'wb').write(pickle.dumps(d, protocol=2))
        open(sys.argv[1] + '/p4', 'wb').write(pickle.dumps(d, protocol=4))
        """, [dir.path])
        guard ok else { #expect(ProcessInfo.processInfo.environment["VKPROBE_REQUIRE_SCIPY"] != "1", "python3-numpy is required"); return }
        for name in ["p2", "p4"] {
            let url = dir.appendingPathComponent(name)
            let good = try CIFARPickle.batch(url, labelKey: "fine_labels")
            #expect(good.labels == [3, 7] && good.data.count == 2 * 3072 && good.data[3071] == UInt8(3071 % 256))
            var read = 0
            for (k, m) in mutants(of: try Data(contentsOf: url), count: 400, seed: name == "p2" ? 1 : 2).enumerated() {
                let f = dir.appendingPathComponent("\(name)-\(k)")
                try m.write(to: f)
                if (try? CIFARPickle.batch(f, labelKey: "fine_labels")) != nil { read += 1 }
                try? FileManager.default.removeItem(at: f)
            }
            #expect(read < 400, "every mutant of \(name) read: the mutations changed nothing")
        }
    }

    @Test func mutatedMATFilesAreReadOrRefused() throws {
        let dir = try temporaryDirectory("mat-fuzz")
        let ok = try python("""
        import sys, numpy as np, scipy.io as sio
        rec = np.zeros(3, dtype=[('class', 'O'), ('fname', 'O')])
        for i in range(3): rec[i] = (np.array([[i + 1]], dtype=np.uint8), '%05d.jpg' % i)
        names = np.empty(2, dtype=object); names[:] = ['one', 'two']
        sio.savemat(sys.argv[1] + '/plain.mat', {'annotations': rec.reshape(1, 3), 'class_names': names.reshape(1, 2)})
        sio.savemat(sys.argv[1] + '/packed.mat', {'annotations': rec.reshape(1, 3), 'class_names': names.reshape(1, 2)}, do_compression=True)
        """, [dir.path])
        guard ok else { #expect(ProcessInfo.processInfo.environment["VKPROBE_REQUIRE_SCIPY"] != "1", "python3-scipy is required"); return }
        for name in ["plain.mat", "packed.mat"] {
            let url = dir.appendingPathComponent(name)
            #expect(try MATFile(path: url.path)["annotations"] != nil)
            for (k, m) in mutants(of: try Data(contentsOf: url), count: 400, seed: name.count == 9 ? 3 : 4).enumerated() {
                let f = dir.appendingPathComponent("\(k).mat")
                try m.write(to: f)
                _ = try? MATFile(path: f.path)
                try? FileManager.default.removeItem(at: f)
            }
        }
    }
}
