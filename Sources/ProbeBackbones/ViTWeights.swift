import Foundation
import SafeTensors

/// The tensors of a timm ViT checkpoint (`model.safetensors`, timm's names), checked against a
/// configuration: every missing, unexpected and mis-shaped tensor is listed at once, and a
/// non-finite value is refused naming the tensor. F16 and BF16 weights are converted to f32.
public struct ViTWeights {
    public let config: ViTConfig
    public let path: String
    /// Host values by timm name.
    public private(set) var tensors: [String: [Float]]
    /// Set when the final norm holds NaN or inf (what is wrong with it).
    public private(set) var damagedFinalNorm: String?
    /// Set when the checkpoint's position table has another grid than the registry entry's.
    public private(set) var storedGridNote: String?
    /// The pooled head the checkpoint holds for its family (CLIP: `head.*`; SigLIP: `attn_pool.*`).
    public private(set) var pooledHead: PooledHead?
    /// Its output width (CLIP's projection: 512 for ViT-B/16; MAP: D).
    public private(set) var pooledWidth = 0

    /// Tensors a timm model may hold that the frozen token forward does not use (the pooled
    /// heads below are read when their family has them).
    static let ignoredPrefixes = ["head.", "fc_norm.", "attn_pool.", "head_drop.", "norm_post."]

    /// The pretrained pooling on top of the final norm that upstream's `cls` reads: CLIP's
    /// projection (timm's `head`, OpenAI's `proj`) or SigLIP's attention pool (`attn_pool`, MAP).
    /// `proj`: a linear projection of the normed [CLS] (CLIP's; EVA-02-CLIP's trunk head); `map`: the
    /// attention pool (SigLIP); `map+proj`: the attention pool, then the trunk's head as the
    /// tower's projection (open_clip's PE-Core: `timm_proj: null`, the head is the projection).
    public enum PooledHead: String, Codable, Sendable { case projection = "proj", map, mapProjection = "map+proj" }

    /// The pooled head's tensors and shapes, for a configuration.
    public static func pooledShapes(_ c: ViTConfig, _ kind: PooledHead, projection: Int) -> [String: [Int]] {
        // PE's pool has its own MLP ratio (4) where the model's differs.
        let (D, H) = (c.embedDim, c.family == .pe ? 4 * c.embedDim : c.mlpHidden)
        switch kind {
        case .projection: return ["head.weight": [projection, D], "head.bias": [projection]]
        case .mapProjection:
            return pooledShapes(c, .map, projection: D).merging(pooledShapes(c, .projection, projection: projection)) { a, _ in a }
        case .map:
            return ["attn_pool.latent": [1, 1, D], "attn_pool.q.weight": [D, D], "attn_pool.q.bias": [D],
                    "attn_pool.kv.weight": [2 * D, D], "attn_pool.kv.bias": [2 * D], "attn_pool.proj.weight": [D, D],
                    "attn_pool.proj.bias": [D], "attn_pool.norm.weight": [D], "attn_pool.norm.bias": [D],
                    "attn_pool.mlp.fc1.weight": [H, D], "attn_pool.mlp.fc1.bias": [H], "attn_pool.mlp.fc2.weight": [D, H],
                    "attn_pool.mlp.fc2.bias": [D]]
        }
    }

    /// The tensors the forward needs, with their shapes, under timm's names for the family.
    public static func expectedShapes(_ c: ViTConfig) -> [String: [Int]] {
        if let h = c.hiera { return h.shapes(imgSize: c.imgSize) }
        let (D, p, H) = (c.embedDim, c.patchSize, c.mlpHidden)
        var s: [String: [Int]] = ["patch_embed.proj.weight": [D, 3, p, p]]
        func norm(_ name: String, _ width: Int) {
            s[name + ".weight"] = [width]
            if c.normBias { s[name + ".bias"] = [width] }
        }
        if c.absPosEmbed { s["pos_embed"] = [1, c.posEmbedLength, D] }
        if c.relPosBias && c.sharedRelPosBias { s["rel_pos_bias.relative_position_bias_table"] = relativeTableShape(c) }
        if c.finalNorm { norm("norm", D) }
        if c.patchBias { s["patch_embed.proj.bias"] = [D] }
        if c.patchNorm { norm("patch_embed.norm", D) }
        if c.classToken { s["cls_token"] = [1, 1, D] }
        if c.regTokens > 0 { s["reg_token"] = [1, c.regTokens, D] }
        if c.preNorm { norm("norm_pre", D) }
        for i in 0..<c.depth {
            let b = "blocks.\(i)."
            norm(b + "norm1", D); norm(b + "norm2", D)
            switch c.qkvLayout {
            case .fused:
                s[b + "attn.qkv.weight"] = [3 * D, D]
                if c.qkvBias { s[b + "attn.qkv.bias"] = [3 * D] }
            case .fusedQV:
                s[b + "attn.qkv.weight"] = [3 * D, D]
                if c.qkvBias { s[b + "attn.q_bias"] = [D]; s[b + "attn.v_bias"] = [D] }
            case .separate:
                for n in ["q", "k", "v"] { s[b + "attn.\(n)_proj.weight"] = [D, D] }
                if c.qkvBias { s[b + "attn.q_proj.bias"] = [D]; s[b + "attn.v_proj.bias"] = [D] }
            }
            if c.relPosBias && !c.sharedRelPosBias { s[b + "attn.relative_position_bias_table"] = relativeTableShape(c) }
            if c.attnNorm { norm(b + "attn.norm", D) }
            s[b + "attn.proj.weight"] = [D, D]
            if c.projBias { s[b + "attn.proj.bias"] = [D] }
            switch c.mlp {
            case .mlp:
                s[b + "mlp.fc1.weight"] = [H, D]; s[b + "mlp.fc1.bias"] = [H]
            case .glu:
                s[b + "mlp.fc1.weight"] = [2 * H, D]; s[b + "mlp.fc1.bias"] = [2 * H]
            case .swiglu:
                s[b + "mlp.fc1_g.weight"] = [H, D]; s[b + "mlp.fc1_x.weight"] = [H, D]
                if c.projBias { s[b + "mlp.fc1_g.bias"] = [H]; s[b + "mlp.fc1_x.bias"] = [H] }
            }
            if c.mlpNorm { norm(b + "mlp.norm", H) }
            s[b + "mlp.fc2.weight"] = [D, H]
            if c.projBias { s[b + "mlp.fc2.bias"] = [D] }
            if c.layerScale {
                let (g1, g2) = c.layerScaleNames == .ls ? ("ls1.gamma", "ls2.gamma") : ("gamma_1", "gamma_2")
                s[b + g1] = [D]; s[b + g2] = [D]
            }
        }
        return s
    }

    /// BEiT's relative position table: ((2g − 1)² + 3, heads) for the g × g window.
    static func relativeTableShape(_ c: ViTConfig) -> [Int] {
        let g = c.posEmbedGrid
        return [(2 * g - 1) * (2 * g - 1) + 3, c.numHeads]
    }

    /// `ignoring` names tensors of the file that are not the model's (a golden's inputs and
    /// expected outputs).
    /// A checkpoint may say how its position embedding is to be resized (`vkprobe.pos_embed_antialias`
    /// metadata: "false" for models that interpolate without antialiasing, e.g. Hugging Face's
    /// DINOv2, whose conversion writes it); it overrides the registry's default.
    public static let antialiasKey = "vkprobe.pos_embed_antialias"

    public init(config: ViTConfig, file: SafeTensorsFile, model: String, ignoring: (String) -> Bool = { _ in false }) throws {
        var config = config
        if let a = file.metadata[Self.antialiasKey] {
            guard let v = Bool(a) else { throw BackboneError("\(file.path): metadata \(Self.antialiasKey) = '\(a)', expected true or false") }
            config.posEmbedResize = v ? .antialias : .bicubic
        }
        // A position table saved for another square grid than the registry entry's (timm saves the
        // grid the model was created with: a DINOv2 made at img_size=224 holds 16×16, not 37×37):
        // accepted as that grid, and resized from it to the input's as timm's checkpoint filter
        // resizes it when it loads (one resize here, from the stored grid straight to the input's).
        if config.absPosEmbed, let e = file.entries["pos_embed"], e.shape.count == 3, e.shape[0] == 1, e.shape[2] == config.embedDim, e.shape[1] != config.posEmbedLength {
            let prefix = config.noEmbedClass ? 0 : config.prefixTokens
            let cells = e.shape[1] - prefix
            let g = Int(Double(max(cells, 0)).squareRoot().rounded())
            if cells > 0, g * g == cells {
                let registryGrid = config.posEmbedGrid
                config.imgSize = g * config.patchSize
                storedGridNote = "\(file.path): position table for a \(g)×\(g) grid (\(config.imgSize) px), not \(model)'s \(registryGrid)×\(registryGrid) (registry entry): used as saved, resized to the input grid as timm does"
            }
        }
        // BEiT-style checkpoints hold either one table per block or one shared by all of them.
        if config.relPosBias, file.entries["rel_pos_bias.relative_position_bias_table"] != nil,
           file.entries["blocks.0.attn.relative_position_bias_table"] == nil {
            config.sharedRelPosBias = true
        }
        // Pretraining checkpoints of BEiT-style ViTs (SimMIM's, BEiT's without mean pooling) hold a
        // final norm that timm's mean-pooling BEiT lacks: read as the final norm (the `norm` tap).
        if config.family == .beit, !config.finalNorm, file.entries["norm.weight"]?.shape == [config.embedDim] {
            config.finalNorm = true
        }
        self.config = config
        path = file.path
        let expected = Self.expectedShapes(config)
        var missing: [String] = [], misshaped: [String] = []
        for (name, shape) in expected.sorted(by: { $0.key < $1.key }) {
            guard let e = file.entries[name] else { missing.append("\(name) \(shape)"); continue }
            if e.shape != shape { misshaped.append("\(name): file \(e.shape), \(model) expects \(shape)") }
            if !e.dtype.isFloatingPoint { misshaped.append("\(name): \(e.dtype.rawValue), floating point expected") }
        }
        let unexpected = file.names.filter { n in expected[n] == nil && !ignoring(n) && !Self.ignoredPrefixes.contains { n.hasPrefix($0) } }
        if !missing.isEmpty || !unexpected.isEmpty || !misshaped.isEmpty {
            var lines = ["\(file.path): tensors do not match \(model) (width \(config.embedDim), depth \(config.depth), patch \(config.patchSize), "
                         + "\(config.regTokens) registers\(config.layerScale ? ", LayerScale" : "")):"]
            if !missing.isEmpty { lines.append("  missing: " + Self.grouped(missing).joined(separator: ", ")) }
            if !unexpected.isEmpty { lines.append("  unexpected: " + Self.grouped(unexpected).joined(separator: ", ")) }
            if !misshaped.isEmpty { lines.append("  mis-shaped: " + Self.grouped(misshaped).joined(separator: "; ")) }
            lines.append("  (is it another model? `vkprobe extract --model` names its architecture)")
            throw BackboneError(lines.joined(separator: "\n"))
        }
        // The family's pooled head, when the checkpoint has it (every tensor, each of its shape).
        var kind: PooledHead?, width = 0
        let head = file.entries["head.weight"].flatMap { $0.shape.count == 2 && $0.shape[1] == config.embedDim ? $0.shape[0] : nil }
        if config.family == .clip || config.family == .evaclip, let head {
            kind = .projection; width = head
        } else if config.family == .siglip || config.family == .pe, file.entries["attn_pool.latent"] != nil {
            // open_clip's PE towers project the pool's output with the trunk's head (what upstream's `cls` reads).
            if config.family == .pe, let head { kind = .mapProjection; width = head } else { kind = .map; width = config.embedDim }
        }
        var pooledNames: [String] = []
        if let kind {
            var bad: [String] = []
            for (name, shape) in Self.pooledShapes(config, kind, projection: width).sorted(by: { $0.key < $1.key }) {
                guard let e = file.entries[name] else { bad.append("\(name) missing (\(shape))"); continue }
                if e.shape != shape || !e.dtype.isFloatingPoint { bad.append("\(name): file \(e.dtype.rawValue) \(e.shape), expected \(shape)") }
                pooledNames.append(name)
            }
            guard bad.isEmpty else {
                throw BackboneError("\(file.path): the \(kind == .map ? "attention pool (attn_pool)" : kind == .projection ? "projection (head)" : "attention pool and projection (attn_pool, head)") of \(model) does not match: \(bad.joined(separator: "; "))")
            }
        }
        var t: [String: [Float]] = [:]
        for name in Array(expected.keys) + pooledNames {
            let values = try file.floats(name)
            if let bad = values.firstIndex(where: { !$0.isFinite }) {
                // A damaged final norm (MaskFeat's released checkpoints) matters only to a run that
                // reads after it; the forward refuses those taps.
                if name == "norm.weight" || name == "norm.bias" {
                    damagedFinalNorm = "tensor '\(name)' holds a non-finite value (\(values[bad]) at index \(bad))"
                    t[name] = values
                    continue
                }
                throw BackboneError("\(file.path): tensor '\(name)' holds a non-finite value (\(values[bad]) at index \(bad)); the checkpoint is damaged")
            }
            t[name] = values
        }
        tensors = t
        pooledHead = kind; pooledWidth = width
    }

    public subscript(_ name: String) -> [Float] { tensors[name]! }

    /// The same weights resized another way (a command-line choice over the file's metadata).
    public func with(posEmbedResize r: PosEmbedResize) -> ViTWeights {
        var c = config
        c.posEmbedResize = r
        var w = ViTWeights(config: c, path: path, tensors: tensors)
        w.pooledHead = pooledHead; w.pooledWidth = pooledWidth
        return w
    }

    /// The same model with some tensors replaced (a fine-tuned part).
    public func replacing(_ replaced: [String: [Float]]) -> ViTWeights {
        var w = self
        w.tensors.merge(replaced) { _, new in new }
        return w
    }

    /// The same weights without the pooled head (`--cls token`: the [CLS] token itself).
    public func withoutPooledHead() -> ViTWeights {
        var w = self
        w.pooledHead = nil; w.pooledWidth = 0
        return w
    }

    /// Random weights of the configuration's shapes (benchmarks): N(0, 0.02) matrices, unit
    /// LayerNorm gains, zero biases, LayerScale 1e-5.
    public static func random(_ config: ViTConfig, seed: UInt64 = 0) -> ViTWeights {
        var state = seed &+ 0x9E37_79B9_7F4A_7C15
        func normal() -> Float {
            func u() -> Double {
                state &+= 0x9E37_79B9_7F4A_7C15
                var z = state
                z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9; z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                return Double((z ^ (z >> 31)) >> 11) / Double(1 << 53)
            }
            return Float((-2 * log(max(u(), 1e-300))).squareRoot() * cos(2 * .pi * u()))
        }
        var t: [String: [Float]] = [:]
        for (name, shape) in expectedShapes(config) {
            let n = shape.reduce(1, *)
            if name.hasSuffix(".gamma") || name.hasSuffix("gamma_1") || name.hasSuffix("gamma_2") { t[name] = [Float](repeating: 1e-5, count: n) }
            else if shape.count == 1 { t[name] = [Float](repeating: name.contains("norm") && name.hasSuffix("weight") ? 1 : 0, count: n) }
            else { t[name] = (0..<n).map { _ in 0.02 * normal() } }
        }
        return ViTWeights(config: config, path: "(random)", tensors: t)
    }

    /// Writes the tensors as a timm-named safetensors file (atomically).
    public func write(to path: String, metadata: [String: String] = [:]) throws {
        var w = SafeTensorsWriter()
        w.metadata = metadata
        for (name, shape) in Self.expectedShapes(config).sorted(by: { $0.key < $1.key }) { w.add(name, tensors[name]!, shape: shape) }
        try w.write(to: path)
    }

    init(config: ViTConfig, path: String, tensors: [String: [Float]]) {
        self.config = config; self.path = path; self.tensors = tensors
    }

    /// Every entry, those differing only by block index merged: `blocks.{0-11}.ls1.gamma [384]`.
    static func grouped(_ items: [String]) -> [String] {
        var order: [String] = [], indices: [String: [Int]] = [:]
        for item in items {
            var key = item, index: Int?
            if item.hasPrefix("blocks."), let dot = item.dropFirst(7).firstIndex(of: "."), let i = Int(item[item.index(item.startIndex, offsetBy: 7)..<dot]) {
                key = "blocks.#" + item[dot...]; index = i
            }
            if indices[key] == nil { order.append(key); indices[key] = [] }
            if let index { indices[key]!.append(index) }
        }
        return order.map { key in
            let i = indices[key]!.sorted()
            guard let lo = i.first, let hi = i.last else { return key }
            let label = i.count == 1 ? "\(lo)" : i == Array(lo...hi) ? "{\(lo)-\(hi)}" : "{\(i.map(String.init).joined(separator: ","))}"
            return key.replacingOccurrences(of: "#", with: label)
        }
    }

    /// The position embedding for a grid of gh × gw patches: (rows, D) with the prefix tokens'
    /// rows first when the model embeds them, the patch grid resized as the model's family does.
    public func positionEmbedding(gridH gh: Int, gridW gw: Int) -> [Float] {
        let c = config, D = c.embedDim, g = c.posEmbedGrid
        let all = self["pos_embed"]
        let prefix = c.noEmbedClass ? 0 : c.prefixTokens
        let patches = Array(all[(prefix * D)...])
        let resized = PosEmbedResample.resize(patches, h: g, w: g, dim: D, toH: gh, toW: gw, method: c.posEmbedResize)
        return Array(all[..<(prefix * D)]) + resized
    }
}
