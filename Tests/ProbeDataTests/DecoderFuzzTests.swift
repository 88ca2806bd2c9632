import Foundation
import ProbeTestSupport
import Testing
import CZlib
@testable import ProbeData

/// Seeded mutations of real JPEG and PNG files — truncations, bit flips, inserted and repeated
/// bytes, header fields set to extremes — each decoded (it may fail; it must not crash, hang or
/// allocate for a bomb's declared size) and followed by a good file through the same decoder,
/// which must still decode bit-exactly as before: one bad file must never poison the next.
/// `VKPROBE_DECODER_FUZZ_CASES` and `VKPROBE_DECODER_FUZZ_SEED` run it longer
/// (Bench/fuzz_decoders.sh).
@Suite struct DecoderFuzzTests {
    static func seeds() throws -> [(String, Data)] {
        let photo = classImage(2, width: 45, height: 33, seed: 4)
        return [("baseline.jpg", try ImageEncoder.jpeg(photo, quality: 90)),
                ("progressive.jpg", try progressiveJPEG(photo)),
                ("cmyk.jpg", try cmykJPEG(width: 20, height: 14)),
                ("rgb.png", try ImageEncoder.png(classImage(1, width: 23, height: 17, seed: 5)))]
    }

    /// Header fields at extremes: JPEG's frame header (precision, height, width, components),
    /// PNG's IHDR (width, height, depth, colour type, interlace), its CRC fixed half the time so
    /// that the decoder gets past it.
    static func extremeHeader(_ d: inout [UInt8], _ rng: inout FuzzRNG) {
        func put16(_ at: Int, _ v: Int) { d[at] = UInt8(v >> 8 & 255); d[at + 1] = UInt8(v & 255) }
        func put32(_ at: Int, _ v: UInt32) { for k in 0..<4 { d[at + k] = UInt8(v >> (24 - 8 * k) & 255) } }
        if d.starts(with: [0x89, 0x50]) {
            switch rng.below(5) {
            case 0: put32(16, rng.pick([0, 1, 65535, 0x7FFF_FFFF, 0xFFFF_FFFF, 60000]))
            case 1: put32(20, rng.pick([0, 1, 65535, 0x7FFF_FFFF, 0xFFFF_FFFF, 60000]))
            case 2: d[24] = UInt8(rng.pick([0, 1, 2, 3, 4, 7, 16, 255]))
            case 3: d[25] = UInt8(rng.pick([0, 1, 3, 4, 5, 6, 7, 255]))
            default: d[28] = UInt8(rng.pick([1, 2, 255]))
            }
            if rng.below(2) == 0 {
                let crc = d[12..<29].withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, uInt($0.count))) }
                put32(29, crc)
            }
            return
        }
        guard let sof = (2..<(d.count - 10)).first(where: { d[$0] == 0xFF && (d[$0 + 1] == 0xC0 || d[$0 + 1] == 0xC2) }) else { return }
        switch rng.below(4) {
        case 0: d[sof + 4] = UInt8(rng.pick([0, 1, 7, 9, 12, 16, 255]))
        case 1: put16(sof + 5, rng.pick([0, 1, 2, 65535, 65500]))
        case 2: put16(sof + 7, rng.pick([0, 1, 2, 65535, 65500]))
        default: d[sof + 9] = UInt8(rng.pick([0, 1, 2, 4, 5, 255]))
        }
    }

    static func mutate(_ original: Data, _ rng: inout FuzzRNG) -> Data {
        var d = [UInt8](original)
        switch rng.below(6) {
        case 0: d = Array(d.prefix(rng.below(d.count)))
        case 1: for _ in 0...rng.below(8) { d[rng.below(d.count)] ^= UInt8(1 << rng.below(8)) }
        case 2: let at = rng.below(d.count); d.insert(contentsOf: (0...rng.below(20)).map { _ in UInt8(rng.below(256)) }, at: at)
        case 3: let a = rng.below(d.count), n = rng.below(min(64, d.count - a)); d.insert(contentsOf: d[a..<(a + n)], at: rng.below(d.count))
        case 4: extremeHeader(&d, &rng)
        default: for _ in 0...rng.below(4) { d[rng.below(d.count)] = UInt8(rng.pick([0, 0xFF, 0xD8, 0xD9, 0xC4, 0xDA])) }
        }
        return Data(d)
    }

    @Test func aBadFileNeverPoisonsTheNext() throws {
        let env = ProcessInfo.processInfo.environment
        let cases = env["VKPROBE_DECODER_FUZZ_CASES"].flatMap(Int.init) ?? 1200
        var rng = FuzzRNG(state: UInt64(env["VKPROBE_DECODER_FUZZ_SEED"].flatMap(Int.init) ?? 1))
        let seeds = try Self.seeds()
        let reference = try seeds.map { try ImageDecoder().decode($0.1, name: $0.0) }
        let decoder = ImageDecoder()   // one decoder throughout, as a loader worker keeps one
        var failed = 0, poisoned: [String] = []
        for c in 0..<cases {
            let s = rng.below(seeds.count)
            let bad = Self.mutate(seeds[s].1, &rng)
            do { _ = try decoder.decode(bad, name: "case \(c)") } catch { failed += 1 }
            // Every good file, JPEG and PNG, straight after.
            for (k, (name, data)) in seeds.enumerated() {
                guard let img = try? decoder.decode(data, name: name), img == reference[k] else {
                    poisoned.append("case \(c) (a mutated \(seeds[s].0)) → \(name)"); continue
                }
            }
        }
        #expect(poisoned.isEmpty, "good files failed or changed after a bad one: \(poisoned.prefix(10)) (\(poisoned.count) in all)")
        // The mutations are not too tame: a good share of them must be refused.
        #expect(failed > cases / 5, "only \(failed) of \(cases) mutated files failed")
    }

    /// The same as a loader worker meets it: a 12-bit JPEG then good JPEGs, one worker and two.
    @Test func twelveBitJPEGThenGoodOnes() throws {
        let good = try ImageEncoder.jpeg(classImage(0, width: 30, height: 20, seed: 2))
        var twelve = [UInt8](good)
        let sof = try #require((2..<(twelve.count - 10)).first { twelve[$0] == 0xFF && twelve[$0 + 1] == 0xC0 })
        twelve[sof + 4] = 12
        let decoder = ImageDecoder()
        #expect(throws: ImageError.self) { try decoder.decode(Data(twelve), name: "12bit.jpg") }
        let after = try decoder.decode(good, name: "good.jpg")
        #expect(after == (try ImageDecoder().decode(good, name: "good.jpg")))
        do { _ = try decoder.decode(Data(twelve), name: "12bit.jpg") } catch { #expect("\(error)".contains("precision 12"), "\(error)") }
    }
}
