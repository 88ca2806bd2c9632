#version 460
// Fused attention with q, k, v read as uniform texel buffers (body: attention.glsl).
#define TEXEL_QKV
#include "attention.glsl"
