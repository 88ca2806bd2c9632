/// Builds push-constant blocks (4-byte words, std430 scalars) in declaration order.
struct Push {
    private(set) var words: [UInt32] = []
    mutating func u(_ v: Int) { words.append(UInt32(truncatingIfNeeded: v)) }
    mutating func i(_ v: Int) { words.append(UInt32(bitPattern: Int32(truncatingIfNeeded: v))) }
    mutating func f(_ v: Float) { words.append(v.bitPattern) }
    var bytes: Int { words.count * 4 }
}
