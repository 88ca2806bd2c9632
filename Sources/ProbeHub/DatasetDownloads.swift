import Foundation
import Logging

/// `--download` for the datasets torchvision downloads: torchvision's URLs, archive names and
/// MD5s, each archive fetched (resumable), checked, and extracted into torchvision's root layout
/// (`ROOT/dtd/`, `ROOT/food-101`, `ROOT/oxford-iiit-pet/`, `ROOT/cifar-100-python/`, …), which
/// this project's readers take as they are (CIFAR's pickles through `CIFARPickle`).
public enum DatasetDownloads {
    public struct Resource {
        public let url: String, md5: String
        /// The directory under the root that the archive is saved in and extracted into.
        public let into: String
        public var file: String { String(url.split(separator: "/").last ?? "") }
    }

    public static let resources: [String: [Resource]] = [
        "cifar10": [Resource(url: "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", md5: "c58f30108f718f92721af3b95e74349a", into: "")],
        "cifar100": [Resource(url: "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", md5: "eb9058c3a382ffc7106e4002c42a8d85", into: "")],
        "dtd": [Resource(url: "https://www.robots.ox.ac.uk/~vgg/data/dtd/download/dtd-r1.0.1.tar.gz", md5: "fff73e5086ae6bdbea199a49dfb8a4c1", into: "dtd")],
        "food101": [Resource(url: "http://data.vision.ee.ethz.ch/cvl/food-101.tar.gz", md5: "85eeb15f3717b99a5da872d97d918f87", into: "")],
        "oxfordiiitpet": [
            Resource(url: "https://www.robots.ox.ac.uk/~vgg/data/pets/data/images.tar.gz", md5: "5c4f3ee8e5d25df40f4fd59a7f44e54c", into: "oxford-iiit-pet"),
            Resource(url: "https://www.robots.ox.ac.uk/~vgg/data/pets/data/annotations.tar.gz", md5: "95a8c909bbe2e81eed6a22bccdf3f68f", into: "oxford-iiit-pet"),
        ],
        // torchvision checks no MD5 for FGVC-Aircraft; the archive's size and gzip stream are checked.
        "fgvcaircraft": [Resource(url: "https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/archives/fgvc-aircraft-2013b.tar.gz", md5: "", into: "")],
        "sun397": [Resource(url: "http://vision.princeton.edu/projects/2010/SUN/SUN397.tar.gz", md5: "8ca2778205c41d23104230ba66911c7a", into: "")],
        "cub200": [Resource(url: "https://data.caltech.edu/records/65de6-vnq75/files/CUB_200_2011.tgz", md5: "97eceeb196236b17998738112f37df78", into: "")],
        // Places365-Standard, small (256 px) images, as torchvision's `Places365(small=True)`.
        "places365": [
            Resource(url: "http://data.csail.mit.edu/places/places365/filelist_places365-standard.tar", md5: "35a0585fee1fa656440f3ab298f8479c", into: ""),
            Resource(url: "http://data.csail.mit.edu/places/places365/train_256_places365standard.tar", md5: "53ca1c756c3d1e7809517cc47c5561c5", into: ""),
            Resource(url: "http://data.csail.mit.edu/places/places365/val_256.tar", md5: "e27b17d8d44f4af9a78502beb927f808", into: ""),
        ],
        // torchvision's STL10: the binary version (stl10_binary/), its MD5.
        "stl10": [Resource(url: "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz", md5: "91f7769df0f17e558f3565bffb0c7dfb", into: "")],
    ]

    /// Fetches and extracts what `dataset` needs under `root`, unless a previous run finished it
    /// (a marker per archive). `VKPROBE_DATASET_MIRROR` replaces the servers' scheme and host
    /// (a mirror, or the tests' local server); `VKPROBE_DATASET_CHECKSUMS` names a file of
    /// "archive md5" lines that replace the table's (the tests' miniature archives; `-` for none).
    public static func ensure(_ dataset: String, root: URL, environment: [String: String]) throws {
        let key = dataset.lowercased().replacingOccurrences(of: "-", with: "")
        guard let list = resources[key] else {
            throw HubError("--download: \(dataset) has no download here (\(resources.keys.sorted().joined(separator: ", "))); ImageNet (its terms) and Stanford Cars (its original URLs are gone) are fetched by hand")
        }
        var checksums: [String: String] = [:]
        if let f = environment["VKPROBE_DATASET_CHECKSUMS"], let text = try? String(contentsOfFile: f, encoding: .utf8) {
            // "-": no checksum for that archive.
            for line in text.split(separator: "\n") { let p = line.split(separator: " "); if p.count == 2 { checksums[String(p[0])] = p[1] == "-" ? "" : String(p[1]) } }
        }
        for r in list {
            let dir = r.into.isEmpty ? root : root.appendingPathComponent(r.into)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let marker = dir.appendingPathComponent(".\(r.file).extracted")
            if FileManager.default.fileExists(atPath: marker.path) { continue }
            let archive = dir.appendingPathComponent(r.file)
            let md5 = checksums[r.file] ?? r.md5
            if !FileManager.default.fileExists(atPath: archive.path) {
                var url = r.url
                if let mirror = environment["VKPROBE_DATASET_MIRROR"], !mirror.isEmpty, let scheme = url.range(of: "://"),
                   let pathStart = url[scheme.upperBound...].firstIndex(of: "/") {
                    url = mirror.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + String(url[pathStart...])
                }
                #if canImport(FoundationNetworking) && !VKPROBE_NO_NETWORK || os(macOS)
                let part = dir.appendingPathComponent(r.file + ".part")
                try HTTP.download(url, to: part, headers: [:], expectedSize: nil) { done, total in
                    hubLog.notice("downloading \(r.file): \(HubDownloader.bytes(done))\(total.map { " of \(HubDownloader.bytes($0)) (\(100 * done / max($0, 1))%)" } ?? "")")
                }
                if !md5.isEmpty {
                    let got = try FileDigest.md5(part.path)
                    guard got == md5 else {
                        try? FileManager.default.removeItem(at: part)
                        throw HubError("\(url): MD5 \(got) is not torchvision's \(md5); the download was removed — run again to fetch it anew")
                    }
                }
                try FileManager.default.moveItem(at: part, to: archive)
                #else
                throw HubError("this build has no network access: put \(r.file) (from \(url)) in \(dir.path) and run again")
                #endif
            } else if !md5.isEmpty, try FileDigest.md5(archive.path) != md5 {
                throw HubError("\(archive.path): its MD5 is not torchvision's \(md5); remove it to fetch it anew")
            }
            hubLog.notice("extracting \(r.file) into \(dir.path)")
            let s = try Archive.extract(archive, into: dir)
            hubLog.notice("extracted \(s.files) files (\(HubDownloader.bytes(s.bytes)))\(s.skipped > 0 ? ", \(s.skipped) links or special entries skipped" : "")")
            FileManager.default.createFile(atPath: marker.path, contents: Data())
        }
    }
}
