import ProbeAutodiff
import SafeTensors

/// The tensors of a set of specs on one backend: created by initialisation or loaded from a
/// safetensors file under upstream names (with a prefix such as `0.`), checked for missing,
/// unexpected and mis-shaped tensors.
public final class HeadParameters<B: Backend> {
    public let specs: [ParameterSpec]
    public let backend: B
    public var values: [String: B.Value]

    /// Initialised from the upstream initialisers with a seeded generator.
    public init(specs: [ParameterSpec], backend: B, seed: UInt64) throws {
        self.specs = specs; self.backend = backend
        var rng = InitRNG(seed: seed)
        var v: [String: B.Value] = [:]
        for s in specs { v[s.name] = try backend.constant(rng.values(for: s), s.shape) }
        values = v
    }

    /// Loaded from `file`: every spec must be present as `prefix + name` with the spec's shape, and
    /// (when `strict`) no other tensor may carry the prefix.
    /// With an empty prefix, "unexpected" means other tensors under a module index (`0.`, `1.`, ...).
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
        func underHead(_ n: String) -> Bool {
            if !prefix.isEmpty { return n.hasPrefix(prefix) }
            guard let dot = n.firstIndex(of: ".") else { return false }
            return Int(n[..<dot]) != nil
        }
        let unexpected = strict ? file.names.filter { underHead($0) && !known.contains($0) && !$0.hasSuffix("num_batches_tracked") } : []
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

    /// Host copies, for saving.
    public func hostValues() throws -> [(spec: ParameterSpec, values: [Float])] {
        try specs.map { ($0, try backend.toHost(values[$0.name]!)) }
    }
}
