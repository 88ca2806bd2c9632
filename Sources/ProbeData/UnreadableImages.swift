import Foundation

/// How many unreadable images a split may have before a run stops (`--max-unreadable`): a
/// share of the split ("1%", the default) or a count ("5"; "0" is strict). Losing images
/// silently changes what an accuracy means, so past this the run fails, naming them.
public struct UnreadablePolicy: Sendable, Equatable, CustomStringConvertible {
    public enum Limit: Sendable, Equatable { case fraction(Double), count(Int) }
    public var limit: Limit
    public static let `default` = UnreadablePolicy(limit: .fraction(0.01))
    public init(limit: Limit) { self.limit = limit }

    /// "1%", "0.5%", "0", "12".
    public init(parsing text: String) throws {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t.hasSuffix("%"), let p = Double(t.dropLast()), p.isFinite, p >= 0, p <= 100 { limit = .fraction(p / 100); return }
        if let n = Int(t), n >= 0 { limit = .count(n); return }
        throw DataError("--max-unreadable \(text): a percentage of each split (e.g. 1%, 0.5%) or a count of images (0 = none)")
    }

    /// The most unreadable images allowed among `images`.
    public func allowed(of images: Int) -> Int {
        switch limit {
        case let .fraction(f): return Int((f * Double(images)).rounded(.down))
        case let .count(n): return n
        }
    }

    public var description: String {
        switch limit {
        case let .fraction(f): return String(format: "%g%%", f * 100)
        case let .count(n): return "\(n)"
        }
    }
}

/// What a split lost (in `summary.json` and `extract.json`).
public struct UnreadableReport: Codable, Sendable, Equatable {
    /// Images in the split (distinct images: augmented views count once).
    public var images: Int
    public var unreadable: Int
    public var fraction: Double
    /// Images decoded through libjpeg warnings (kept, as PIL keeps them).
    public var decodedWithWarnings: Int
    /// The first unreadable ones, "name: reason".
    public var first: [String]

    public init(images: Int, unreadable: Int, decodedWithWarnings: Int, first: [String]) {
        self.images = images; self.unreadable = unreadable; self.decodedWithWarnings = decodedWithWarnings; self.first = first
        fraction = images > 0 ? Double(unreadable) / Double(images) : 0
    }

    enum CodingKeys: String, CodingKey { case images, unreadable, fraction, first, decodedWithWarnings = "decoded_with_warnings" }
    /// The first files' camelCase spelling, still read.
    enum FirstFormatKeys: String, CodingKey { case decodedWithWarnings }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        images = try c.decode(Int.self, forKey: .images)
        unreadable = try c.decode(Int.self, forKey: .unreadable)
        fraction = try c.decode(Double.self, forKey: .fraction)
        first = try c.decode([String].self, forKey: .first)
        decodedWithWarnings = try c.decodeIfPresent(Int.self, forKey: .decodedWithWarnings)
            ?? decoder.container(keyedBy: FirstFormatKeys.self).decode(Int.self, forKey: .decodedWithWarnings)
    }

    /// "2 of 23 unreadable (8.70%), 1 decoded with warnings".
    public var line: String {
        "\(unreadable) of \(images) unreadable (\(String(format: "%.2f", 100 * fraction))%)" + (decodedWithWarnings > 0 ? ", \(decodedWithWarnings) decoded with warnings" : "")
    }
}

/// Counts a split's unreadable images (by image, whatever the views or epochs) and warnings, and
/// stops the run once more are unreadable than the policy allows for the whole split.
public final class UnreadableTally {
    public let split: String
    public let images: Int
    public let policy: UnreadablePolicy
    public private(set) var unreadable: [String: SkippedImage] = [:]
    public private(set) var order: [String] = []
    public private(set) var warned: Set<String> = []

    public init(split: String, images: Int, policy: UnreadablePolicy) {
        self.split = split; self.images = images; self.policy = policy
    }

    /// Adds what a batch (or a resumed shard) reported; returns the newly seen unreadable images.
    @discardableResult
    public func add(skipped: [SkippedImage], warnings: [SkippedImage]) -> [SkippedImage] {
        var new: [SkippedImage] = []
        for s in skipped where unreadable[s.name] == nil { unreadable[s.name] = s; order.append(s.name); new.append(s) }
        for w in warnings { warned.insert(w.name) }
        return new
    }

    public var report: UnreadableReport {
        UnreadableReport(images: images, unreadable: unreadable.count, decodedWithWarnings: warned.count,
                         first: order.prefix(20).map { "\($0): \(unreadable[$0]!.reason)" })
    }

    /// Throws once the split has more unreadable images than allowed (`read`: images read so far).
    public func check(read: Int) throws {
        let allowed = policy.allowed(of: images)
        guard unreadable.count > allowed else { return }
        let listed = order.prefix(10).map { "  \($0): \(unreadable[$0]!.reason)" }.joined(separator: "\n")
        let share = String(format: "%.2f", 100 * Double(unreadable.count) / Double(max(images, 1)))
        throw DataError("""
            \(split): \(unreadable.count) of its \(images) images are unreadable (\(share)% of the split\(read < images ? ", found among the first \(read) read" : "")), more than --max-unreadable \(policy) allows (\(allowed)):
            \(listed)\(unreadable.count > 10 ? "\n  … and \(unreadable.count - 10) more" : "")
            Fix or remove them, or allow more with --max-unreadable (a share like 5% or a count; 0 = none).
            """)
    }
}
