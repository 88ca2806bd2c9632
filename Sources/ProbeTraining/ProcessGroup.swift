import ProbeKernels

/// The processes of a data-parallel run: each trains on its slice of every global batch, the
/// parameter gradients and BatchNorm statistics are summed over the group, and rank 0 alone
/// writes checkpoints, metrics, summaries and logs.
public protocol ProcessGroup: BatchStatisticsReducer {
    var rank: Int { get }
    var size: Int { get }
    /// The rank on this machine and the number of ranks on it (for the choice of device).
    var localRank: Int { get }
}

/// One process (no communication).
public final class SingleProcess: ProcessGroup {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public var localRank: Int { 0 }
    public func allReduceSum(_ values: inout [Double]) throws {}
}
