#version 460
// CPU-shaped GEMM with A and B as storage buffers (body: gemm_cpu.glsl).
#include "gemm_cpu.glsl"
