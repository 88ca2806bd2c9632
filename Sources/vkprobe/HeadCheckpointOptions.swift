import Foundation
import SafeTensors

/// Head options a checkpoint decides, for the flags a user left out (`--eval-only`, `--init-head`):
/// EP's queries from its learnt queries' shape (`0.cls_token` [1, Q, D]); what no shape decides —
/// attention heads, EP's d_out, AB-MILP's variant — from upstream's arguments where the checkpoint
/// records them (`tools/convert_checkpoint.py` writes `args` of upstream's `misc.save_model` as
/// metadata: `queries`, `num_heads`, `d_out`, `abmilp_*`).
struct HeadCheckpointOptions: Equatable {
    var queries: Int?
    var numHeads: Int?
    var dOut: Int?
    var abmilp: [String: String] = [:]
    /// Where each value came from, for the run's log.
    var sources: [String] = []

    init(path: String) throws {
        let file = try SafeTensorsFile(path: path)
        if let e = file.entries["0.cls_token"], e.shape.count == 3, e.shape[0] == 1 {
            queries = e.shape[1]
            sources.append("--ep-queries \(e.shape[1]) from 0.cls_token \(e.shape)")
        } else if let q = file.metadata["queries"].flatMap(Int.init) {
            queries = q
        }
        if let h = file.metadata["num_heads"].flatMap(Int.init) { numHeads = h; sources.append("--num-heads \(h) from the checkpoint's arguments") }
        if let d = file.metadata["d_out"].flatMap(Int.init) { dOut = d; sources.append("--ep-d-out \(d) from the checkpoint's arguments") }
        for k in ["act", "sa", "depth", "cond", "content"] {
            if let v = file.metadata["abmilp_\(k)"] { abmilp[k] = v; sources.append("--abmilp-\(k) \(v) from the checkpoint's arguments") }
        }
    }

    /// The options every checkpoint agrees on (a value two checkpoints disagree on is left to its flag).
    static func agreed(_ all: [HeadCheckpointOptions]) -> (queries: Int?, numHeads: Int?, dOut: Int?, abmilp: [String: String]) {
        func one<T: Equatable>(_ values: [T?]) -> T? {
            let v = values.compactMap { $0 }
            guard let f = v.first, v.allSatisfy({ $0 == f }) else { return nil }
            return f
        }
        var abmilp: [String: String] = [:]
        for k in Set(all.flatMap { $0.abmilp.keys }) { if let v = one(all.map { $0.abmilp[k] }) { abmilp[k] = v } }
        return (one(all.map(\.queries)), one(all.map(\.numHeads)), one(all.map(\.dOut)), abmilp)
    }
}
