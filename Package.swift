// swift-tools-version: 6.1
import PackageDescription

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
    ],
    targets: [
        // System-library shims. CVulkan declares prototypes only; the loader is opened at run
        // time (dlopen) so a machine without libvulkan gets a clear error instead of a link failure.
        .systemLibrary(name: "CVulkan", path: "Sources/CVulkan"),
        .systemLibrary(name: "CTurboJPEG", path: "Sources/CTurboJPEG"),

        // Compiles every Shaders/*.comp (plus the variants in Shaders/variants.txt) to SPIR-V.
        .plugin(name: "ShaderCompiler", capability: .buildTool(), path: "Plugins/ShaderCompiler"),

        // Compute-only Vulkan layer: no ML knowledge.
        .target(name: "VulkanCompute", dependencies: ["CVulkan"]),

        // The compiled SPIR-V kernels as bundle resources.
        .target(name: "ProbeShaders", dependencies: ["VulkanCompute"],
                plugins: [.plugin(name: "ShaderCompiler")]),

        // Tensors, the op set (forward and backward) and its CPU reference.
        .target(name: "ProbeKernels", dependencies: ["VulkanCompute", "ProbeShaders"]),

        // Reading (memory-mapped, validated) and writing safetensors files.
        .target(name: "SafeTensors"),

        // A small tape over the op set, generic over a GPU and a CPU (Double) backend.
        .target(name: "ProbeAutodiff", dependencies: ["ProbeKernels", "VulkanCompute"]),

        // EP and every baseline head, the probe-head wrapper, upstream parameter names.
        .target(name: "ProbeHeads", dependencies: ["ProbeAutodiff", "ProbeKernels", "SafeTensors", "VulkanCompute"]),

        // The probing protocol: token datasets, optimisers, schedules, many heads at once, checkpoints.
        .target(name: "ProbeTraining", dependencies: ["ProbeHeads", "ProbeAutodiff", "ProbeKernels", "SafeTensors", "VulkanCompute"]),

        .executableTarget(name: "vkprobe", dependencies: [
            "VulkanCompute", "ProbeShaders", "ProbeKernels", "ProbeAutodiff", "ProbeHeads", "SafeTensors", "ProbeTraining",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .executableTarget(name: "vkprobe-bench", dependencies: [
            "ProbeKernels", "VulkanCompute", "ProbeShaders", "ProbeAutodiff", "ProbeHeads",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "Bench/Sources/vkprobe-bench"),

        .testTarget(name: "VulkanComputeTests",
                    dependencies: ["VulkanCompute", "ProbeShaders", "vkprobe"]),
        .testTarget(name: "ProbeHeadsTests",
                    dependencies: ["ProbeHeads", "ProbeAutodiff", "ProbeKernels", "ProbeTraining", "SafeTensors", "VulkanCompute", "ProbeShaders", "vkprobe"]),
        .testTarget(name: "ProbeTrainingTests",
                    dependencies: ["ProbeTraining", "ProbeHeads", "ProbeKernels", "SafeTensors", "VulkanCompute", "ProbeShaders", "vkprobe"]),
        .testTarget(name: "ProbeKernelsTests",
                    dependencies: ["ProbeKernels", "VulkanCompute", "ProbeShaders"]),
    ],
    swiftLanguageModes: [.v5]
)
