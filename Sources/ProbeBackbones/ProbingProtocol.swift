import Foundation
import ProbeData

/// A backbone family, for the probing protocol upstream runs on it.
public enum BackboneFamily: String, Codable, Sendable, CaseIterable {
    /// timm's plain ViT as upstream's `models_vit` runs it (MAE, DeiT, DINO, iBOT, MoCo v3, …).
    case vit
    /// DINOv2 through the hub (`get_intermediate_layers(norm=True)`).
    case dinov2
    /// A CLIP tower through open_clip.
    case clip
    /// SigLIP through open_clip (a timm trunk).
    case siglip
    /// BEiT (v1, v2; upstream loads BEiTv2 through SimMIM's BEiT-style ViT): the last block, no final norm.
    case beit
    /// EVA-02 MIM through timm (`TimmWrapper`: `forward_features`, which has no final norm).
    case eva
    /// EVA-02-CLIP towers through open_clip.
    case evaclip
    /// DINOv3 through its hub (`get_intermediate_layers(norm=True)`).
    case dinov3
    /// Perception Encoder (PE-Core) through open_clip.
    case pe
    /// AIMv2 through Apple's `aim` package (the trunk's normalised tokens, no [CLS]).
    case aimv2
    /// Hiera through timm (`forward_features`: the last stage's tokens, no final norm, no [CLS]).
    case hiera
}

/// What upstream's code path feeds its heads for one family, and so what VulkanProbe does by
/// default: the input size, the tap probed, the transforms and their statistics, the
/// position-embedding resize. Each can be overridden on the command line; the run prints the
/// protocol in one line and records it (`extract.json`, `backbone.json`, `summary.json`).
///
/// | family | input | tokens probed | transforms | pos-embed resize |
/// |---|---|---|---|---|
/// | vit (`models_vit`) | 224 | last block, before the final norm | mae | timm's (antialiased) |
/// | dinov2 (hub) | 224 (not the table's 518) | after the final norm, registers stripped | mae | hub's: no antialias, scale (g + 0.1)/M; register models antialiased |
/// | clip (open_clip) | the tower's | after `ln_post` (timm's `norm`) | clip | timm's |
/// | siglip (open_clip) | the tower's | after the trunk's `norm` | siglip | timm's |
public struct ProbingProtocol: Codable, Sendable, Equatable {
    public var family: BackboneFamily
    public var inputSize: Int
    /// `-1` (the last block's output) or `norm` (after the final norm).
    public var tap: String
    public var transforms: TransformFamily
    public var mean: [Float]
    public var std: [Float]
    public var posEmbedResize: PosEmbedResize
    /// The MLP activation the weights run with (`gelu`, `quick_gelu`, `gelu_tanh`).
    public var activation: String
    /// What `cls` (the linear probe's input, `NAME_all`'s first token) is: `token` (the [CLS]
    /// token at the tap), `proj` (CLIP's projected [CLS]), `map` (SigLIP's attention pool), `none`.
    public var cls = "token"
    /// The tokens after the final norm begin with the [CLS] (`ViTConfig.normTokensKeepCLS`); nil: no.
    public var clsInTokens: Bool?
    /// The final norm's tokens go through CLIP's projection (`--tokens projected`, upstream's `NAME_all` there); nil: no.
    public var tokensProjected: Bool?
    /// The backbone runs in train mode while the heads train (`--backbone-mode train`:
    /// upstream's drop path / RoPE rescale, `TrainModeNoise`); nil: eval mode throughout.
    public var backboneTrainMode: Bool?

    /// `cls` for a loaded backbone: its pooled head after the final norm, where it has one.
    public mutating func setCLS(pooledHead: String?, classToken: Bool) {
        cls = tap == "norm" ? (pooledHead ?? (classToken ? "token" : "none")) : (classToken ? "token" : "none")
    }

    /// Upstream's protocol for a configuration.
    public static func upstream(for c: ViTConfig) -> ProbingProtocol {
        var p = family(c)
        if c.normTokensKeepCLS { p.clsInTokens = true }
        return p
    }

    static func family(_ c: ViTConfig) -> ProbingProtocol {
        let act: String
        switch c.activation {
        case .quickGELU: act = "quick_gelu"
        case .tanhGELU: act = "gelu_tanh"
        case .silu: act = "silu"
        default: act = "gelu"
        }
        switch c.family {
        // Upstream's own transforms (`build_transforms`: ImageNet statistics) for every loader but
        // open_clip's, whatever statistics the checkpoint was trained with.
        case .vit:
            return ProbingProtocol(family: .vit, inputSize: c.imgSize, tap: "-1", transforms: .mae, mean: ViTFamilies.imagenetMean,
                                   std: ViTFamilies.imagenetStd, posEmbedResize: c.posEmbedResize, activation: act)
        case .dinov2:
            return ProbingProtocol(family: .dinov2, inputSize: 224, tap: "norm", transforms: .mae, mean: ViTFamilies.imagenetMean,
                                   std: ViTFamilies.imagenetStd, posEmbedResize: c.posEmbedResize, activation: act)
        case .clip:
            // open_clip's pretrained configs squash at 378 px (MetaCLIP 2 and DFN's H and bigG towers).
            return ProbingProtocol(family: .clip, inputSize: c.imgSize, tap: "norm", transforms: c.imgSize == 378 ? .squash : .clip, mean: c.mean, std: c.std,
                                   posEmbedResize: c.posEmbedResize, activation: act)
        case .siglip:
            return ProbingProtocol(family: .siglip, inputSize: c.imgSize, tap: "norm", transforms: .siglip, mean: c.mean, std: c.std,
                                   posEmbedResize: c.posEmbedResize, activation: act)
        case .beit:
            return ProbingProtocol(family: .beit, inputSize: c.imgSize, tap: "-1", transforms: .mae, mean: ViTFamilies.imagenetMean,
                                   std: ViTFamilies.imagenetStd, posEmbedResize: c.posEmbedResize, activation: act)
        case .eva, .dinov3, .aimv2, .hiera:
            return ProbingProtocol(family: c.family, inputSize: c.family == .dinov3 ? 224 : c.imgSize, tap: "norm", transforms: .mae,
                                   mean: ViTFamilies.imagenetMean, std: ViTFamilies.imagenetStd, posEmbedResize: c.posEmbedResize, activation: act)
        case .evaclip, .pe:
            // PE-Core's open_clip configs: squash, bilinear.
            return ProbingProtocol(family: c.family, inputSize: c.imgSize, tap: "norm", transforms: c.family == .pe ? .pe : .clip, mean: c.mean, std: c.std,
                                   posEmbedResize: c.posEmbedResize, activation: act)
        }
    }

    /// The run's one line.
    public var line: String {
        func stats(_ v: [Float]) -> String { v.map { String(format: "%.3f", $0) }.joined(separator: ",") }
        let tokens = tap == "norm" ? "after the final norm" + (clsInTokens == true ? " ([CLS] and patches)" : "") + (tokensProjected == true ? " through the projection" : "")
            : "of block \(tap) before the final norm"
        return "protocol (\(family.rawValue)): input \(inputSize) px, tokens \(tokens), "
            + "cls = \(cls), \(transforms.rawValue) transforms, mean \(stats(mean)) std \(stats(std)), pos-embed resize \(posEmbedResize.rawValue), \(activation)"
            + (backboneTrainMode == true ? ", backbone in train mode while the heads train" : "")
    }
}
