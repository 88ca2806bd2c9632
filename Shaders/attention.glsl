// Body of attention.comp and its texel build (attention_texel).
// Fused multi-head attention forward with online softmax:
//   O[z, i] = sum_j softmax_j(scale * q_i . k_j) v_j      for z = (b, h)
// q (B,H,Lq,D), k (B,H,Lk,D), v (B,H,Lk,Dv), o (B,H,Lq,Dv): strided, last axis contiguous.
// One invocation per (z, query row, CHUNK output channels). With WRITE_PROBS the chunk-0
// invocation also writes the probabilities P (B,H,Lq,Lk) (contiguous) and logsumexp (B,H,Lq).
#extension GL_EXT_samplerless_texture_functions : require  // texelFetch on textureBuffer (no sampler)
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint CHUNK = 64;
layout(constant_id = 2) const bool WRITE_PROBS = false;
// The head width D (the host passes p.D equal to it, at most 128): the query row is read once into
// registers, not once per key (every invocation's q row is its own, so a per-key re-read costs a
// cache line per lane and element on a GPU, where k and v are broadcast to the whole subgroup).
layout(constant_id = 3) const uint HEAD_DIM = 64;

// STORAGE_F16: q, k, v and o in f16 (arithmetic in f32).
#ifdef STORAGE_F16
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#define ELEM float16_t
#else
#define ELEM float
#endif
#ifdef TEXEL
// q, k and v as uniform texel buffers of four-element texels (see gemm_common.glsl: on lavapipe a
// texel fetch is a vector gather, a storage-buffer load in a loop a loop over the lanes).
#ifdef STORAGE_F16
#pragma vkprobe_texel(0, rgba16f)
#pragma vkprobe_texel(1, rgba16f)
#pragma vkprobe_texel(2, rgba16f)
#else
#pragma vkprobe_texel(0, rgba32f)
#pragma vkprobe_texel(1, rgba32f)
#pragma vkprobe_texel(2, rgba32f)
#endif
layout(set = 0, binding = 0) uniform textureBuffer texQ;
layout(set = 0, binding = 1) uniform textureBuffer texK;
layout(set = 0, binding = 2) uniform textureBuffer texV;
float Q1(uint i) { return component(texelFetch(texQ, int(i >> 2)), i & 3u); }
float K1(uint i) { return component(texelFetch(texK, int(i >> 2)), i & 3u); }
float V1(uint i) { return component(texelFetch(texV, int(i >> 2)), i & 3u); }
#else
layout(set = 0, binding = 0) readonly buffer Q { ELEM q[]; };
layout(set = 0, binding = 1) readonly buffer K { ELEM k[]; };
layout(set = 0, binding = 2) readonly buffer V { ELEM v[]; };
float Q1(uint i) { return float(q[i]); }
float K1(uint i) { return float(k[i]); }
float V1(uint i) { return float(v[i]); }
#endif
layout(set = 0, binding = 3) writeonly buffer O { ELEM o[]; };
layout(set = 0, binding = 4) writeonly buffer Pr { float probs[]; };
layout(set = 0, binding = 5) writeonly buffer L { float lse[]; };
struct Params {
    uint H, Lq, Lk, D, Dv;
    uint offQ, qb, qh, ql;
    uint offK, kb, kh, kl;
    uint offV, vb, vh, vl;
    uint offO, ob, oh, ol;
    uint offP, offL;
    float scale;
};
PUSH_PARAMS(Params)

void main() {
    LOAD_PARAMS();
    uint z = gl_WorkGroupID.z;
    uint b = z / p.H, h = z % p.H;
    uint chunks = (p.Dv + CHUNK - 1u) / CHUNK;
    uint item = gl_GlobalInvocationID.x;
    if (item >= p.Lq * chunks) return;
    uint i = item / chunks, c0 = (item % chunks) * CHUNK;
    uint qBase = p.offQ + b * p.qb + h * p.qh + i * p.ql;
    uint kBase = p.offK + b * p.kb + h * p.kh;
    uint vBase = p.offV + b * p.vb + h * p.vh + c0;
    float acc[CHUNK];
    [[unroll]] for (uint c = 0; c < CHUNK; ++c) acc[c] = 0.0;
    float qv[HEAD_DIM];
    [[unroll]] for (uint d = 0; d < HEAD_DIM; ++d) qv[d] = Q1(qBase + d);
    float m = -1.0 / 0.0, l = 0.0;
    for (uint j = 0; j < p.Lk; ++j) {
        float s = 0.0;
        [[unroll]] for (uint d = 0; d < HEAD_DIM; ++d) s += qv[d] * K1(kBase + j * p.kl + d);
        s *= p.scale;
        float mNew = max(m, s);
        float corr = exp(m - mNew), w = exp(s - mNew);
        l = l * corr + w;
        uint vRow = vBase + j * p.vl;
        [[unroll]] for (uint c = 0; c < CHUNK; ++c) {
            float vv = c0 + c < p.Dv ? V1(vRow + c) : 0.0;
            acc[c] = acc[c] * corr + w * vv;
        }
        m = mNew;
    }
    float inv = 1.0 / l;
    uint oBase = p.offO + b * p.ob + h * p.oh + i * p.ol + c0;
    [[unroll]] for (uint c = 0; c < CHUNK; ++c) if (c0 + c < p.Dv) o[oBase + c] = ELEM(acc[c] * inv);
    if (WRITE_PROBS && c0 == 0u) {
        uint row = (z * p.Lq + i);
        for (uint j = 0; j < p.Lk; ++j) {
            float s = 0.0;
            [[unroll]] for (uint d = 0; d < HEAD_DIM; ++d) s += qv[d] * K1(kBase + j * p.kl + d);
            probs[p.offP + row * p.Lk + j] = exp(s * p.scale - m) * inv;
        }
        lse[p.offL + row] = m + log(l);
    }
}
