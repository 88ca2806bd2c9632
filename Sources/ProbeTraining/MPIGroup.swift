import Foundation

/// A process group over Open MPI, loaded at run time (the build and the tests need no MPI): used
/// when the process was started by `mpirun` (Open MPI sets OMPI_COMM_WORLD_SIZE). Open MPI's
/// handles (`MPI_COMM_WORLD`, `MPI_DOUBLE`, `MPI_SUM`) are addresses of its exported objects,
/// which is what makes them reachable by name through dlsym; other MPIs define them otherwise and
/// are refused by name.
public final class MPIGroup: ProcessGroup {
    public let rank: Int
    public let size: Int
    public let localRank: Int

    private typealias InitFn = @convention(c) (UnsafeMutablePointer<Int32>?, UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> Int32
    private typealias CommIntFn = @convention(c) (UnsafeMutableRawPointer, UnsafeMutablePointer<Int32>) -> Int32
    private typealias AllreduceFn = @convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer?, Int32, UnsafeMutableRawPointer, UnsafeMutableRawPointer, UnsafeMutableRawPointer) -> Int32
    private typealias VoidFn = @convention(c) () -> Int32

    private let allreduce: AllreduceFn
    private let finalize: VoidFn
    private let world: UnsafeMutableRawPointer, double: UnsafeMutableRawPointer, sum: UnsafeMutableRawPointer

    /// Whether this process was launched by Open MPI's `mpirun`.
    public static var launchedByMPI: Bool { ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] != nil }

    public init() throws {
        let env = ProcessInfo.processInfo.environment
        let names = [env["VKPROBE_MPI_LIBRARY"], "libmpi.so.40", "libmpi.so"].compactMap { $0 }
        guard let lib = names.lazy.compactMap({ dlopen($0, RTLD_NOW | RTLD_GLOBAL) }).first else {
            throw TrainingError("started by mpirun, but Open MPI's library (libmpi.so.40) cannot be loaded: install it (apt install openmpi-bin libopenmpi-dev) or name it with VKPROBE_MPI_LIBRARY")
        }
        func symbol(_ name: String) throws -> UnsafeMutableRawPointer {
            guard let s = dlsym(lib, name) else {
                throw TrainingError("\(names.first!): no symbol \(name) — data-parallel runs need Open MPI (other MPI implementations are not supported)")
            }
            return s
        }
        let initFn = unsafeBitCast(try symbol("MPI_Init"), to: InitFn.self)
        let commRank = unsafeBitCast(try symbol("MPI_Comm_rank"), to: CommIntFn.self)
        let commSize = unsafeBitCast(try symbol("MPI_Comm_size"), to: CommIntFn.self)
        allreduce = unsafeBitCast(try symbol("MPI_Allreduce"), to: AllreduceFn.self)
        finalize = unsafeBitCast(try symbol("MPI_Finalize"), to: VoidFn.self)
        world = try symbol("ompi_mpi_comm_world")
        double = try symbol("ompi_mpi_double")
        sum = try symbol("ompi_mpi_op_sum")
        guard initFn(nil, nil) == 0 else { throw TrainingError("MPI_Init failed") }
        var r: Int32 = 0, s: Int32 = 0
        guard commRank(world, &r) == 0, commSize(world, &s) == 0 else { throw TrainingError("MPI_Comm_rank/MPI_Comm_size failed") }
        rank = Int(r); size = Int(s)
        localRank = Int(env["OMPI_COMM_WORLD_LOCAL_RANK"] ?? "") ?? rank
    }

    public func allReduceSum(_ values: inout [Double]) throws {
        let n = values.count
        guard n > 0 else { return }
        guard n <= Int(Int32.max) else { throw TrainingError("an all-reduce of \(n) values exceeds MPI's count") }
        var out = [Double](repeating: 0, count: n)
        let rc = values.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { dst in allreduce(src.baseAddress, dst.baseAddress, Int32(n), double, sum, world) }
        }
        guard rc == 0 else { throw TrainingError("MPI_Allreduce of \(n) values failed (error \(rc)) on rank \(rank)") }
        values = out
    }

    private var finalized = false
    /// MPI_Finalize (once; every rank calls it before exiting normally). After an error a rank
    /// exits without it, and mpirun then stops the whole job, naming that rank.
    public func finish() {
        guard !finalized else { return }
        finalized = true
        _ = finalize()
    }
}
