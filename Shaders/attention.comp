#version 460
// Fused attention with q, k, v as storage buffers (body: attention.glsl).
#include "attention.glsl"
