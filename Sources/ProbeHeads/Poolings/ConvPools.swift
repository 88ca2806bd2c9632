import ProbeAutodiff

/// CBAM pooling (reduction 1/16, 7×7 spatial kernel) on the tokens as a (B, D, F, F) map:
/// channel gate σ(fc2(relu(fc1(avg))) + fc2(relu(fc1(max)))), spatial gate σ(BN2d(conv7×7([mean_c; max_c]))),
/// out = mean_hw(relu(gated + x)).
public struct CBAMPool: Pooling {
    public let name = "cbam"
    public let options: HeadOptions
    public init(_ options: HeadOptions) throws {
        _ = try squareGrid("cbam", options.tokens)
        guard options.dim >= 16 else { throw HeadError("cbam: D = \(options.dim) is too small for the 1/16 channel reduction") }
        self.options = options
    }
    var reduced: Int { max(1, options.dim / 16) }
    public var parameters: [ParameterSpec] {
        let (D, r) = (options.dim, reduced)
        return [ParameterSpec("channel.fc1.weight", [r, D, 1, 1], .uniformFanIn(D)), ParameterSpec("channel.fc2.weight", [D, r, 1, 1], .uniformFanIn(r)),
                ParameterSpec("spatial.conv.conv.weight", [1, 2, 7, 7], .uniformFanIn(98)),
                ParameterSpec("spatial.conv.bn.weight", [1], .constant(1)), ParameterSpec("spatial.conv.bn.bias", [1], .constant(0)),
                ParameterSpec("spatial.conv.bn.running_mean", [1], .constant(0), trainable: false),
                ParameterSpec("spatial.conv.bn.running_var", [1], .constant(1), trainable: false)]
    }
    public var forwardMACs: Int { let (N, D) = (options.tokens, options.dim); return 2 * D * reduced * 2 + N * 98 + 4 * N * D }

    public func forward<B>(_ g: Graph<B>, _ x: Variable<B>, _ p: ParameterScope<B>) throws -> PoolingOutput<B> {
        let s = g.shape(x), (Bn, N, D) = (s[0], s[1], s[2])
        let F = try squareGrid("cbam", N)
        // Upstream works on the (B, D, F, F) map; the same arithmetic on the tokens as they come,
        // (B, N, D) with N = F·F row-major, saves materialising the transposed map and its gradient.
        let fc1 = try g.reshape(try p["channel.fc1.weight"], [reduced, D]), fc2 = try g.reshape(try p["channel.fc2.weight"], [D, reduced])
        func channelMLP(_ v: Variable<B>) throws -> Variable<B> { try g.linear(try g.activation(try g.linear(v, fc1, nil), .relu), fc2, nil) }
        let gateC = try g.activation(try g.add(try channelMLP(try g.mean(x, axis: 1)), try channelMLP(try g.amax(x, axis: 1))), .sigmoid)
        let x1 = try g.mul(x, try g.reshape(gateC, [Bn, 1, D]))                                   // (B, N, D)
        let pooled = try g.concat([try g.reshape(try g.mean(x1, axis: 2), [Bn, 1, F, F]), try g.reshape(try g.amax(x1, axis: 2), [Bn, 1, F, F])], axis: 1)
        let conv = try g.conv2d(pooled, try p["spatial.conv.conv.weight"], padding: 3)            // (B, 1, F, F)
        let bn = try g.batchNorm(conv, p, "spatial.conv.bn", channelAxis: 1, eps: 1e-5)
        let gateS = try g.activation(try g.reshape(bn, [Bn, N, 1]), .sigmoid)
        let y = try g.activation(try g.add(try g.mul(x1, gateS), x), .relu)
        return PoolingOutput(features: try g.mean(y, axis: 1), attention: try g.reshape(gateS, [Bn, 1, N]).value)
    }
}

/// DOLG's spatial attention (ReLU, no ASPP), computed on tokens (1×1 convolutions are Linears over
/// channels, BatchNorm2d is BatchNorm over (B, N) per channel): Y = BN(conv1 x); F = Y/‖Y‖ over
/// channels (eps 1e-12); a = softplus(conv2(relu Y)); out = mean_n(a ⊙ F).
public struct DOLGPool: Pooling {
    public let name = "dolg"
    public let options: HeadOptions
    public init(_ options: HeadOptions) throws {
        _ = try squareGrid("dolg", options.tokens)
        self.options = options
    }
    public var parameters: [ParameterSpec] {
        let D = options.dim
        // Upstream init_weights (ResNet style): conv weights N(0, √(2 / fan_out)), fan_out = k·k·out;
        // the biases keep PyTorch's default.
        return [ParameterSpec("conv1.weight", [D, D, 1, 1], .normal(std: (2 / Double(D)).squareRoot())), ParameterSpec("conv1.bias", [D], .uniformFanIn(D)),
                ParameterSpec("bn.weight", [D], .constant(1)), ParameterSpec("bn.bias", [D], .constant(0)),
                ParameterSpec("bn.running_mean", [D], .constant(0), trainable: false), ParameterSpec("bn.running_var", [D], .constant(1), trainable: false),
                ParameterSpec("conv2.weight", [1, D, 1, 1], .normal(std: 2.0.squareRoot())), ParameterSpec("conv2.bias", [1], .uniformFanIn(D))]
    }
    public var forwardMACs: Int { let (N, D) = (options.tokens, options.dim); return N * D * D + 4 * N * D }

    public func forward<B>(_ g: Graph<B>, _ x: Variable<B>, _ p: ParameterScope<B>) throws -> PoolingOutput<B> {
        let D = options.dim
        let y = try g.linear(x, try g.reshape(try p["conv1.weight"], [D, D]), try p["conv1.bias"])
        let yb = try g.batchNorm(y, p, "bn", channelAxis: 2, eps: 1e-5)
        let f = try g.l2Normalize(yb, eps: 1e-12)
        let a = try g.activation(try g.linear(try g.activation(yb, .relu), try g.reshape(try p["conv2.weight"], [1, D]), try p["conv2.bias"]), .softplus)
        let out = try g.mean(try g.mul(f, a), axis: 1)
        return PoolingOutput(features: out, attention: a.value)
    }
}
