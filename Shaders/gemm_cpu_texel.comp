#version 460
// CPU-shaped GEMM with A and B read as uniform texel buffers (body: gemm_cpu.glsl). lavapipe
// compiles a texel fetch to a vector gather, a storage-buffer load inside a loop to a branchy loop
// over the lanes; offsets, strides and float4 paths are those of gemm_cpu.comp, the texels being
// float4s (so every offset into A and B must be a multiple of 4 elements: the host checks).
#define TEXEL_AB
#include "gemm_cpu.glsl"
