// GEMM interface shared by every variant:
//   C[b](i,j) = act(alpha * sum_k A[b](i,k) B[b](k,j) + beta * C[b](i,j) + bias[j]) * scale[j]
// or, RESIDUAL (a transformer block's branch added to its residual stream, LayerScale as scale):
//   C[b](i,j) = C[b](i,j) + act(alpha * sum_k A[b](i,k) B[b](k,j) + bias[j]) * scale[j]
// Operands are strided (transposes are strides), batch strides may be 0 (broadcast).
// Storage: f32 everywhere; STORAGE_F16: f16 everywhere; INPUT_F16: A and B f16, C, bias and
// scale f32; INPUT_BF16: A and B bfloat16 (the high half of an f32, held as 16-bit integers),
// C, bias and scale f32. Accumulation is f32 in every case. The including shader defines SCALE_ID and
// RESIDUAL_ID, the constant ids of HAS_SCALE and RESIDUAL after its own.
#ifndef VKPROBE_GEMM_COMMON_GLSL
#define VKPROBE_GEMM_COMMON_GLSL
#extension GL_EXT_samplerless_texture_functions : require  // texelFetch on textureBuffer (no sampler)
#include "common.glsl"
#include "activations.glsl"

#if defined(STORAGE_F16) || defined(INPUT_F16)
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#define ELEM float16_t
#define ELEM4 f16vec4
#define TO_FLOAT(x) float(x)
#define TO_FLOAT4(x) vec4(x)
#elif defined(INPUT_BF16)
// Storage only (no 16-bit arithmetic, so no shaderInt16): elements widen to 32 bits on load.
#extension GL_EXT_shader_16bit_storage : require
#define ELEM uint16_t
#define ELEM4 u16vec4
#define TO_FLOAT(x) bf16ToFloat(uint(x))
#define TO_FLOAT4(x) bf16ToFloat4(uvec4(x))
#else
#define ELEM float
#define ELEM4 vec4
#define TO_FLOAT(x) (x)
#define TO_FLOAT4(x) (x)
#endif
#ifdef STORAGE_F16
#define ELEM_C float16_t
#define ELEM_C4 f16vec4
#else
#define ELEM_C float
#define ELEM_C4 vec4
#endif

layout(constant_id = 1) const uint ACT = 0;       // epilogue activation (activations.glsl)
layout(constant_id = 2) const bool HAS_BIAS = false;
layout(constant_id = SCALE_ID) const bool HAS_SCALE = false;
layout(constant_id = RESIDUAL_ID) const bool RESIDUAL = false;

#ifdef TEXEL
// A and B as uniform texel buffers of four-element texels (RGBA32F, RGBA16F for f16 inputs,
// RGBA16UI for bf16): lavapipe compiles a texel fetch to a vector gather, a storage-buffer load
// inside a loop to a loop over the lanes. Offsets into them are still in elements.
#ifdef INPUT_BF16
#pragma vkprobe_texel(0, rgba16ui)
#pragma vkprobe_texel(1, rgba16ui)
layout(set = 0, binding = 0) uniform utextureBuffer texA;
layout(set = 0, binding = 1) uniform utextureBuffer texB;
vec4 A4(uint q) { return bf16ToFloat4(texelFetch(texA, int(q))); }
vec4 B4(uint q) { return bf16ToFloat4(texelFetch(texB, int(q))); }
#else
#if defined(STORAGE_F16) || defined(INPUT_F16)
#pragma vkprobe_texel(0, rgba16f)
#pragma vkprobe_texel(1, rgba16f)
#else
#pragma vkprobe_texel(0, rgba32f)
#pragma vkprobe_texel(1, rgba32f)
#endif
layout(set = 0, binding = 0) uniform textureBuffer texA;
layout(set = 0, binding = 1) uniform textureBuffer texB;
vec4 A4(uint q) { return texelFetch(texA, int(q)); }
vec4 B4(uint q) { return texelFetch(texB, int(q)); }
#endif
float A1(uint i) { return component(A4(i >> 2), i & 3u); }
float B1(uint i) { return component(B4(i >> 2), i & 3u); }
#else
layout(set = 0, binding = 0) readonly buffer BufA { ELEM a[]; };
layout(set = 0, binding = 1) readonly buffer BufB { ELEM b[]; };
// The same bindings read four K-consecutive elements at a time (float4 paths).
layout(set = 0, binding = 0) readonly buffer BufA4 { ELEM4 a4[]; };
layout(set = 0, binding = 1) readonly buffer BufB4 { ELEM4 b4[]; };
vec4 A4(uint q) { return TO_FLOAT4(a4[q]); }
vec4 B4(uint q) { return TO_FLOAT4(b4[q]); }
float A1(uint i) { return TO_FLOAT(a[i]); }
float B1(uint i) { return TO_FLOAT(b[i]); }
#endif
layout(set = 0, binding = 2) buffer BufC { ELEM_C c[]; };
layout(set = 0, binding = 3) readonly buffer BufBias { ELEM_C bias[]; };
layout(set = 0, binding = 4) readonly buffer BufScale { ELEM_C scale[]; };
// The same as four consecutive elements (storeC4: CPU drivers pay per store instruction and lane).
layout(set = 0, binding = 2) buffer BufC4 { ELEM_C4 c4[]; };
layout(set = 0, binding = 3) readonly buffer BufBias4 { ELEM_C4 bias4[]; };
layout(set = 0, binding = 4) readonly buffer BufScale4 { ELEM_C4 scale4[]; };

struct GemmParams {
    uint M, N, K, batch;
    uint offA, offB, offC, offBias, offScale;
    uint sAb, sAi, sAk;
    uint sBb, sBk, sBn;
    uint sCb, sCi;
    float alpha, beta;
    // Second batch axis: batch index z = outer * batchInner + inner (e.g. (B, heads)).
    uint batchInner, sAh, sBh, sCh;
};
PUSH_PARAMS(GemmParams)

uint batchBase(uint off, uint z, uint sOuter, uint sInner) {
    return off + (z / p.batchInner) * sOuter + (z % p.batchInner) * sInner;
}

float loadA(uint base, uint i, uint k) { return A1(base + i * p.sAi + k * p.sAk); }
float loadB(uint base, uint k, uint j) { return B1(base + k * p.sBk + j * p.sBn); }

void storeC(uint base, uint i, uint j, float acc) {
    uint idx = base + i * p.sCi + j;
    float v = p.alpha * acc;
    if (!RESIDUAL && p.beta != 0.0) v += p.beta * float(c[idx]);
    if (HAS_BIAS) v += float(bias[p.offBias + j]);
    v = activate(ACT, v);
    if (HAS_SCALE) v *= float(scale[p.offScale + j]);
    if (RESIDUAL) v += float(c[idx]);
    c[idx] = ELEM_C(v);
}

// Four consecutive elements of a row of C, from element idx of column j (both multiples of 4, as
// the bias and scale offsets): storeC for each, one store instruction (CPU drivers pay per store
// instruction and lane).
void storeC4(uint idx, uint j, vec4 acc) {
    vec4 v = p.alpha * acc;
    if (!RESIDUAL && p.beta != 0.0) v += p.beta * vec4(c4[idx >> 2]);
    if (HAS_BIAS) v += vec4(bias4[(p.offBias + j) >> 2]);
    v = vec4(activate(ACT, v.x), activate(ACT, v.y), activate(ACT, v.z), activate(ACT, v.w));
    if (HAS_SCALE) v *= vec4(scale4[(p.offScale + j) >> 2]);
    if (RESIDUAL) v += vec4(c4[idx >> 2]);
    c4[idx >> 2] = ELEM_C4(v);
}
#endif
