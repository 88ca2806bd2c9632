// swift-tools-version: 6.1
import PackageDescription

// Floors, bottom to top (one direction of dependency; see ARCHITECTURE.md):
//   CVulkan, CTurboJPEG, CSPNG, CZlib  system-library shims
//   CImageCodecs                   libjpeg decoding in C (its errors longjmp, which Swift cannot catch)
//   ProbeOps                       op vocabulary and the Double reference of every op (no device)
//   ProbeAutodiff                  the tape (Graph) over any Backend; CPUBackend in Double
//   VulkanCompute                  compute-only Vulkan: devices, memory, pipelines, streams
//   ProbeShaders                   SPIR-V resources + generated typed kernel interfaces
//   ProbeKernels                   Tensor, the op set on the device, GPUBackend
//   SafeTensors                    validated reader, atomic writer
//   ProbeData                      token files and shards, images and transforms (no device)
//   ProbeHeads                     EP and every baseline head (backend-generic; no device)
//   ProbeHub                       the Hugging Face hub's files and cache (Foundation only)
//   ProbeBackbones                 frozen ViTs from timm checkpoints
//   ProbeTraining                  datasets, optimisers, schedules, the many-head trainer
//   vkprobe, vkprobe-bench         command line and benchmarks
let package = Package(
    name: "VulkanProbe",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "vkprobe", targets: ["vkprobe"]),
        .executable(name: "vkprobe-bench", targets: ["vkprobe-bench"]),
        .library(name: "VulkanCompute", targets: ["VulkanCompute"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // SHA-256 (hub blobs) and MD5 (torchvision's archive checks): BoringSSL's, not ours.
        .package(url: "https://github.com/apple/swift-crypto", from: "4.0.0"),
        // TensorBoard's Event/Summary messages (generated code committed: TensorBoardProto/).
        .package(url: "https://github.com/apple/swift-protobuf", exact: "1.39.0"),
        // Libraries log through swift-log; the command line installs the one console handler.
        .package(url: "https://github.com/apple/swift-log", from: "1.5.0"),
    ],
    targets: [
        // System-library shims. CVulkan declares prototypes only; the loader is opened at run
        // time (dlopen) so a machine without libvulkan gets a clear error instead of a link failure.
        .systemLibrary(name: "CVulkan", path: "Sources/CVulkan"),
        .systemLibrary(name: "CTurboJPEG", path: "Sources/CTurboJPEG"),
        .systemLibrary(name: "CSPNG", path: "Sources/CSPNG"),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .target(name: "CImageCodecs", linkerSettings: [.linkedLibrary("jpeg")]),

        // Op vocabulary (dtypes, activations, reductions, errors) and the Double reference.
        .target(name: "ProbeOps"),

        // A small tape over the op set, generic over a backend; CPUBackend runs it in Double.
        .target(name: "ProbeAutodiff", dependencies: ["ProbeOps"]),

        // Compute-only Vulkan layer: no ML knowledge.
        .target(name: "VulkanCompute", dependencies: ["CVulkan", .product(name: "Logging", package: "swift-log")]),

        // Compiles every Shaders/*.comp (plus the variants in Shaders/variants.txt) to SPIR-V and
        // generates the typed kernel interfaces with ShaderInterfaceGenerator.
        .executableTarget(name: "ShaderInterfaceGenerator"),
        .plugin(name: "ShaderCompiler", capability: .buildTool(), dependencies: ["ShaderInterfaceGenerator"],
                path: "Plugins/ShaderCompiler"),

        // The compiled SPIR-V kernels as bundle resources, and their typed interfaces.
        .target(name: "ProbeShaders", dependencies: ["VulkanCompute"],
                plugins: [.plugin(name: "ShaderCompiler")]),

        // Tensors, the op set (forward and backward) on the device, the GPU backend of the tape.
        .target(name: "ProbeKernels", dependencies: ["ProbeOps", "ProbeAutodiff", "VulkanCompute", "ProbeShaders", .product(name: "Logging", package: "swift-log")]),

        // Reading (memory-mapped, validated) and writing safetensors files.
        .target(name: "SafeTensors"),

        // Datasets without a device: token files and shards (later images, transforms, loaders).
        .target(name: "ProbeData", dependencies: ["SafeTensors", "CTurboJPEG", "CImageCodecs", "CSPNG", "CZlib"]),

        // EP and every baseline head, the probe-head wrapper, upstream parameter names.
        .target(name: "ProbeHeads", dependencies: ["ProbeOps", "ProbeAutodiff", "SafeTensors"]),

        // Files from the Hugging Face hub into its shared cache (timm's pretrained weights by name).
        .target(name: "ProbeHub", dependencies: ["CZlib", .product(name: "Crypto", package: "swift-crypto"), .product(name: "Logging", package: "swift-log")]),

        // Frozen ViT backbones from timm checkpoints: registry, weight checks, the inference forward.
        .target(name: "ProbeBackbones", dependencies: ["ProbeOps", "ProbeAutodiff", "ProbeKernels", "VulkanCompute", "SafeTensors", "ProbeData"]),

        // The probing protocol: token datasets, optimisers, schedules, many heads at once, checkpoints.
        // (BuildStamp: the version and commit, for `vkprobe --version` and summary.json.)
        .plugin(name: "BuildStamp", capability: .buildTool(), path: "Plugins/BuildStamp"),
        .target(name: "ProbeTraining", dependencies: ["ProbeHeads", "ProbeAutodiff", "ProbeKernels", "ProbeData", "ProbeBackbones", "SafeTensors", "VulkanCompute",
                                                      .product(name: "SwiftProtobuf", package: "swift-protobuf"), .product(name: "Logging", package: "swift-log")],
                plugins: [.plugin(name: "BuildStamp")]),

        .executableTarget(name: "vkprobe", dependencies: [
            "VulkanCompute", "ProbeShaders", "ProbeKernels", "ProbeHeads", "ProbeTraining", "ProbeData", "ProbeBackbones", "ProbeHub",
            .product(name: "ArgumentParser", package: "swift-argument-parser"), .product(name: "Logging", package: "swift-log"),
        ]),

        .executableTarget(name: "vkprobe-bench", dependencies: [
            "ProbeKernels", "VulkanCompute", "ProbeShaders", "ProbeHeads", "ProbeTraining", "ProbeBackbones",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "Bench/Sources/vkprobe-bench"),

        // Test support without a device (tolerances, finite differences, goldens, scratch directories,
        // running vkprobe): what the targets below the GPU floors need, and nothing more.
        .target(name: "ProbeTestBasics", path: "Tests/ProbeTestBasics"),
        // With the device: test devices under the validation layer, image fixtures (re-exports the basics).
        .target(name: "ProbeTestSupport", dependencies: ["ProbeTestBasics", "VulkanCompute", "ProbeShaders", "ProbeKernels", "ProbeData", "CTurboJPEG", "CZlib"],
                path: "Tests/ProbeTestSupport"),

        .testTarget(name: "ProbeOpsTests", dependencies: ["ProbeOps", "ProbeTestBasics"]),

        .testTarget(name: "VulkanComputeTests", dependencies: ["VulkanCompute", "ProbeShaders", "ProbeTestSupport"]),
        .testTarget(name: "ProbeKernelsTests", dependencies: ["ProbeKernels", "VulkanCompute", "ProbeShaders", "ProbeTestSupport"]),
        .testTarget(name: "SafeTensorsTests", dependencies: ["SafeTensors", "ProbeTestBasics"]),
        .testTarget(name: "ProbeDataTests", dependencies: ["ProbeData", "SafeTensors", "ProbeTestSupport", "CZlib"]),
        .testTarget(name: "ProbeHeadsTests", dependencies: ["ProbeHeads", "ProbeAutodiff", "ProbeKernels", "SafeTensors", "ProbeTestSupport"]),
        .testTarget(name: "ProbeBackbonesTests", dependencies: ["ProbeBackbones", "ProbeKernels", "SafeTensors", "ProbeTestSupport"]),
        .testTarget(name: "ProbeTrainingTests", dependencies: ["ProbeTraining", "ProbeHeads", "ProbeAutodiff", "ProbeKernels", "ProbeShaders", "ProbeData",
                                                            "VulkanCompute", "SafeTensors", "ProbeTestSupport", "vkprobe", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "VKProbeCLITests", dependencies: ["ProbeTestSupport", "ProbeBackbones", "ProbeData", "SafeTensors", "vkprobe"]),
    ],
    swiftLanguageModes: [.v5]
)
