import Foundation

/// Where a run's attention-map contact sheets are: `RUN/maps/` (what `vkprobe maps` writes by
/// default), a `maps/` beside the run (the demo's layout), and any other folder `maps --output`
/// wrote to, which it records in `RUN/maps.json` so that `vkprobe report` finds it.
public enum RunMaps {
    public static let file = "maps.json"

    struct Record: Codable { var contact_sheets: [String] }

    /// Records `sheet` (an absolute path) in the run's maps.json, unless it is where report looks anyway.
    public static func record(_ sheet: URL, in run: URL) throws {
        let path = sheet.standardizedFileURL.path
        guard !defaultSheets(of: run).map(\.standardizedFileURL.path).contains(path) else { return }
        var known = recorded(in: run)
        guard !known.contains(path) else { return }
        known.append(path)
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try e.encode(Record(contact_sheets: known)).write(to: run.appendingPathComponent(file), options: .atomic)
    }

    /// Every contact sheet of the run, in the order above (those that exist or not).
    public static func sheets(of run: URL) -> [URL] {
        defaultSheets(of: run) + recorded(in: run).map { URL(fileURLWithPath: $0) }
    }

    static func defaultSheets(of run: URL) -> [URL] {
        [run.appendingPathComponent("maps/contact-sheet.png"), run.deletingLastPathComponent().appendingPathComponent("maps/contact-sheet.png")]
    }

    static func recorded(in run: URL) -> [String] {
        guard let data = try? Data(contentsOf: run.appendingPathComponent(file)) else { return [] }
        return (try? JSONDecoder().decode(Record.self, from: data))?.contact_sheets ?? []
    }
}
