import ProbeAutodiff
import SafeTensors

/// The tensors of a set of specs on one backend: created by initialisation or loaded from a
/// safetensors file (names prefixed by `prefix` there), checked for missing, unexpected and
/// mis-shaped tensors.
public final class HeadParameters<B: Backend> {
    public let specs: [ParameterSpec]
    public let backend: B
    public var values: [String: B.Value]

    /// Initialised from the upstream initialisers; `seed(i)` picks the seeded stream of spec i
    /// (consecutive specs with the same seed draw from one stream, in order).
    public init(specs: [ParameterSpec], backend: B, seed: (Int) -> UInt64) throws {
        self.specs = specs; self.backend = backend
        var streams: [UInt64: InitRNG] = [:]
        var v: [String: B.Value] = [:]
        for (i, s) in specs.enumerated() {
            let k = seed(i)
            var rng = streams[k] ?? InitRNG(seed: k)
            v[s.name] = try backend.constant(rng.values(for: s), s.shape)
            streams[k] = rng
        }
        values = v
    }

    public convenience init(specs: [ParameterSpec], backend: B, seed: UInt64) throws {
        try self.init(specs: specs, backend: backend, seed: { _ in seed })
    }

    /// Loaded from `file`: every spec must be present as `prefix + name` with the spec's shape,
    /// and (when `strict`) no other tensor may be in the same namespace: under `prefix`, or for an
    /// empty prefix under the module indices the specs use (`0.`, `1.`, ...). BatchNorm counters
    /// (`num_batches_tracked`) are allowed.
    public init(specs: [ParameterSpec], backend: B, file: SafeTensorsFile, prefix: String, strict: Bool = true, what: String) throws {
        self.specs = specs; self.backend = backend
        var missing: [String] = [], misshaped: [String] = []
        var v: [String: B.Value] = [:]
        for s in specs {
            guard let e = file.entries[prefix + s.name] else { missing.append(prefix + s.name + " \(s.shape)"); continue }
            guard e.shape == s.shape else { misshaped.append("\(prefix + s.name): file \(e.shape), \(what) expects \(s.shape)"); continue }
            v[s.name] = try backend.constant(try file.floats(prefix + s.name), s.shape)
        }
        let known = Set(specs.map { prefix + $0.name })
        let modules = Set(specs.compactMap { s in s.name.firstIndex(of: ".").map { String(s.name[...$0]) } }.filter { Int($0.dropLast()) != nil })
        func inNamespace(_ n: String) -> Bool {
            guard n.hasPrefix(prefix) else { return false }
            let rest = n.dropFirst(prefix.count)
            if !prefix.isEmpty && modules.isEmpty { return true }
            return modules.contains { rest.hasPrefix($0) } || (rest.first?.isNumber ?? false)
        }
        let unexpected = strict ? file.names.filter { inNamespace($0) && !known.contains($0) && !$0.hasSuffix("num_batches_tracked") } : []
        if !missing.isEmpty || !unexpected.isEmpty || !misshaped.isEmpty {
            var lines = ["\(file.path): tensors do not match \(what):"]
            if !missing.isEmpty { lines.append("  missing: " + missing.joined(separator: ", ")) }
            if !unexpected.isEmpty { lines.append("  unexpected: " + unexpected.joined(separator: ", ")) }
            if !misshaped.isEmpty { lines.append("  mis-shaped: " + misshaped.joined(separator: "; ")) }
            throw HeadError(lines.joined(separator: "\n"))
        }
        values = v
    }

    /// Variables for one graph: trainable tensors require gradients, buffers do not.
    public func scope(in g: Graph<B>) -> ParameterScope<B> {
        var vars: [String: Variable<B>] = [:]
        for s in specs { vars[s.name] = s.trainable ? g.parameter(values[s.name]!, name: s.name) : g.constant(values[s.name]!) }
        return ParameterScope(variables: vars)
    }
}
