import Foundation
import ProbeTestSupport
import Testing
@testable import ProbeKernels

@Suite struct TopKTests {
    /// Reference: a full sort, value descending, equal values by index ascending.
    func reference(_ row: [Float], _ idx: [Int32], _ k: Int) -> ([Float], [Int32]) {
        let order = row.indices.sorted { (row[$0], -Int(idx[$0])) > (row[$1], -Int(idx[$1])) }.prefix(k)
        return (order.map { row[$0] }, order.map { idx[$0] })
    }

    @Test(arguments: [(1, 1, 1), (3, 7, 3), (4, 300, 5), (2, 1000, 200), (5, 64, 64), (9, 513, 256)])
    func selectsTheLargestInOrder(_ shape: (Int, Int, Int)) throws {
        let (R, C, k) = shape
        for limit in [nil, 4096] as [Int?] {   // 4 KiB: pieces of a few rows
            let ctx = try makeContext(maxBindingBytes: limit)
            // Values on a coarse grid so that ties occur; a row stride wider than the row.
            var v = randomValues(R * (C + 3), seed: UInt64(C)).map { Float(($0 * 20).rounded()) / 4 }
            for r in 0..<R where C > 4 { v[r * (C + 3) + 1] = 100; v[r * (C + 3) + 3] = 100 }   // tied maxima
            let wide = try ctx.tensor(v, [R, C + 3])
            let values = try wide.slice(axis: 1, 0..<C)
            let outV = try ctx.empty([R, k]), outI = try ctx.empty([R, k], dtype: .i32)
            try ctx.topK(values, k: k, indexBase: 1000, into: outV, outIndices: outI)
            let gotV = try ctx.read(outV), gotI = try ctx.readInt32(outI)
            for r in 0..<R {
                let row = Array(v[(r * (C + 3))..<(r * (C + 3) + C)])
                let (wantV, wantI) = reference(row, (0..<C).map { Int32($0 + 1000) }, k)
                #expect(Array(gotV[(r * k)..<((r + 1) * k)]) == wantV, "row \(r) values (limit \(limit.map(String.init) ?? "none"))")
                #expect(Array(gotI[(r * k)..<((r + 1) * k)]) == wantI, "row \(r) indices")
            }
            // Second stage: candidates with their own indices, increasing along each row as the
            // merged top-k of consecutive bank chunks are (so equal values keep index order).
            var idx: [Int32] = []
            for r in 0..<R { for c in 0..<C { idx.append(Int32(r * 7 + c * 13 + (c * 7919) % 11)) } }
            let tIdx = try ctx.tensor(idx, [R, C]), dense = try ctx.contiguous(values)
            try ctx.topK(dense, indices: tIdx, k: k, into: outV, outIndices: outI)
            let gV = try ctx.read(outV), gI = try ctx.readInt32(outI)
            for r in 0..<R {
                let row = Array(v[(r * (C + 3))..<(r * (C + 3) + C)])
                let (wantV, wantI) = reference(row, Array(idx[(r * C)..<((r + 1) * C)]), k)
                #expect(Array(gV[(r * k)..<((r + 1) * k)]) == wantV && Array(gI[(r * k)..<((r + 1) * k)]) == wantI, "stage 2, row \(r)")
            }
            expectNoValidationMessages(ctx)
        }
    }

    @Test func refusesBadArguments() throws {
        let ctx = try makeContext()
        let x = try ctx.empty([2, 10])
        #expect(throws: OpError.self) { try ctx.topK(x, k: 11, into: try ctx.empty([2, 11]), outIndices: try ctx.empty([2, 11], dtype: .i32)) }
        #expect(throws: OpError.self) { try ctx.topK(x, k: 3, into: try ctx.empty([2, 3]), outIndices: try ctx.empty([2, 3])) }
    }
}
