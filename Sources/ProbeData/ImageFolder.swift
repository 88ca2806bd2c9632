import Foundation

/// torchvision's `ImageFolder` listing, on paths as bytes: the classes are the sorted
/// sub-directories of the root (symlinks to directories count, hidden ones too, as
/// `os.scandir(...).is_dir()` sees them); a class's images are the files under it, walked as
/// `sorted(os.walk(class_dir, followlinks=True))` orders them (directories by path, then files by
/// name, both in Python's `str` order), kept when their name ends with an image extension
/// (case-insensitive). Symlinked directories are followed; one that leads back to a directory
/// being walked or to the root (a loop, which `os.walk` would follow until the path is too long)
/// is not, and is reported, and a directory reached twice within a class is read once.
public struct ImageFolderListing {
    public var classes: [String] = []
    public var files: [ImagePath] = []
    public var labels: [Int32] = []
    /// What was not followed or not readable, one line each (the run prints them).
    public var notes: [String] = []

    struct Entry { var name: [UInt8]; var isDirectory: Bool }
    struct DirectoryID: Hashable { var device: UInt64; var inode: UInt64 }

    public init(root: ImagePath, extensions: Set<String>) throws {
        guard let rootID = Self.directoryID(root) else {
            throw DataError("\(root): no such directory (an ImageFolder root holds one sub-directory per class)")
        }
        let entries: [Entry]
        do { entries = try Self.list(root) } catch { throw DataError("\(root): cannot list (\(error))") }
        let classDirs = entries.filter(\.isDirectory).map(\.name).sorted(by: ImagePath.pythonOrder)
        guard !classDirs.isEmpty else { throw DataError("\(root): no class directories (an ImageFolder root holds one sub-directory per class)") }
        let suffixes = extensions.map { Array(".\($0)".utf8) }
        var empty: [String] = []
        for (c, name) in classDirs.enumerated() {
            let dir = root.appending(name)
            var found: [(dir: [UInt8], files: [[UInt8]])] = []
            var seen: Set<DirectoryID> = []
            walk(dir, ancestors: [rootID], seen: &seen) { path, files in found.append((path.bytes, files)) }
            found.sort { ImagePath.pythonOrder($0.dir, $1.dir) }
            let before = files.count
            for (d, names) in found {
                for f in names.sorted(by: ImagePath.pythonOrder) where suffixes.contains(where: { Self.hasSuffixIgnoringCase(f, $0) }) {
                    files.append(ImagePath(bytes: d).appending(f)); labels.append(Int32(c))
                }
            }
            if files.count == before { empty.append(ImagePath.display(name)) }
            classes.append(ImagePath.display(name))
        }
        guard empty.isEmpty else {
            throw DataError("\(root): no image files (\(extensions.sorted().joined(separator: ", "))) for the classes \(empty.joined(separator: ", ")); remove the empty class directories or add images (torchvision refuses them too)")
        }
    }

    /// Depth-first over `dir`, calling `visit` with each directory and the names of its files.
    private mutating func walk(_ dir: ImagePath, ancestors: [DirectoryID], seen: inout Set<DirectoryID>, visit: (ImagePath, [[UInt8]]) -> Void) {
        guard let id = Self.directoryID(dir) else { notes.append("\(dir): not readable, skipped"); return }
        if ancestors.contains(id) { notes.append("\(dir): a symlink loop (leads back to a directory above it), not followed"); return }
        guard seen.insert(id).inserted else { notes.append("\(dir): the same directory as one already read (through a symlink), read once"); return }
        let entries: [Entry]
        do { entries = try Self.list(dir) } catch { notes.append("\(dir): cannot list (\(error)), skipped"); return }
        visit(dir, entries.filter { !$0.isDirectory }.map(\.name))
        for e in entries where e.isDirectory { walk(dir.appending(e.name), ancestors: ancestors + [id], seen: &seen, visit: visit) }
    }

    static func hasSuffixIgnoringCase(_ name: [UInt8], _ suffix: [UInt8]) -> Bool {
        guard name.count >= suffix.count else { return false }
        return zip(name.suffix(suffix.count), suffix).allSatisfy { (a, b) in (a >= 0x41 && a <= 0x5A ? a + 32 : a) == b }
    }

    static func cString<T>(_ path: ImagePath, _ body: (UnsafePointer<CChar>) -> T) -> T {
        let z = path.bytes + [0]
        return z.withUnsafeBufferPointer { body(UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self)) }
    }

    /// The directory's identity (following symlinks), nil when it is not a readable directory.
    static func directoryID(_ path: ImagePath) -> DirectoryID? {
        var st = stat()
        guard cString(path, { stat($0, &st) }) == 0, (st.st_mode & S_IFMT) == S_IFDIR else { return nil }
        return DirectoryID(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
    }

    /// The entries of a directory (without . and ..); directories as `stat` sees them (through
    /// symlinks); a broken symlink is a file, as `os.walk` lists it.
    static func list(_ dir: ImagePath) throws -> [Entry] {
        guard let d = cString(dir, { opendir($0) }) else { throw ImageError(String(cString: strerror(errno))) }
        defer { closedir(d) }
        var out: [Entry] = []
        while let e = readdir(d) {
            let name: [UInt8] = withUnsafeBytes(of: e.pointee.d_name) { Array($0.prefix { $0 != 0 }) }
            if name == [0x2E] || name == [0x2E, 0x2E] { continue }
            let path = dir.appending(name)
            var st = stat()
            out.append(Entry(name: name, isDirectory: cString(path, { stat($0, &st) }) == 0 && (st.st_mode & S_IFMT) == S_IFDIR))
        }
        return out
    }
}
