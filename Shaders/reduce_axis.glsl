// Body of reduce_axis.comp (x as a storage buffer) and its texel build (reduce_axis_texel) (TEXEL: x as a
// uniform texel buffer of R32UI bits, which lavapipe reads in the loop over r by a vector gather
// instead of a loop over the lanes; with VEC4, of RGBA32UI texels: four outputs per invocation).
// x viewed as (outer, R, inner) with strides; out[o, j] = reduce_r x[o, r, j] (scaled by `scale`).
// MAX also writes the argmax (first index of the maximum, plus rOffset) as int32.
// With accumulate != 0 a piece of R combines with what earlier pieces wrote: sums become
// accumulate * out + result; MAX keeps the earlier maximum unless this piece's is larger.
#extension GL_EXT_samplerless_texture_functions : require  // texelFetch on textureBuffer (no sampler)
#include "common.glsl"
#include "codes.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint OP = 0;   // a REDUCE_* code (codes.glsl); REDUCE_MAX also writes the argmax
// Sums with TEXEL only: each invocation reduces four consecutive outputs j..j+3 from RGBA32UI
// texels (inner contiguous and a multiple of 4 long; every offset and stride of x, and the output
// offset, multiples of 4). lavapipe fetches a texel through a call that gathers every lane's
// texel, so a texel of four elements costs about what one of one does.
layout(constant_id = 2) const bool VEC4 = false;

#ifdef TEXEL
#pragma vkprobe_texel(0, VEC4, rgba32ui, r32ui)
layout(set = 0, binding = 0) uniform utextureBuffer xTex;
float loadX(uint i) { return uintBitsToFloat(texelFetch(xTex, int(i)).x); }
vec4 loadX4(uint i) { return uintBitsToFloat(texelFetch(xTex, int(i >> 2))); }
#else
layout(set = 0, binding = 0) readonly buffer X { float x[]; };
float loadX(uint i) { return x[i]; }
#endif
layout(set = 0, binding = 1) buffer O { float o[]; };
layout(set = 0, binding = 1) buffer O4 { vec4 o4[]; };
layout(set = 0, binding = 2) writeonly buffer A { int argmax[]; };
struct Params {
    uint outer, R, inner;
    uint sOuter, sR, sInner;
    uint offX, offO, offA;
    uint rOffset;       // index of this piece's first r along the whole axis (argmax)
    float scale;
    float accumulate;
};
PUSH_PARAMS(Params)

#ifdef TEXEL
// Outputs 4q .. 4q+3: eight partial float4 sums in flight over r, then the tail.
void reduce4(uint q) {
    uint ou = (4u * q) / p.inner, j = (4u * q) % p.inner;
    uint base = p.offX + ou * p.sOuter + j;
    vec4 part[8] = vec4[8](vec4(0.0), vec4(0.0), vec4(0.0), vec4(0.0), vec4(0.0), vec4(0.0), vec4(0.0), vec4(0.0));
    uint r = 0;
    for (; r + 8u <= p.R; r += 8u) {
        [[unroll]] for (uint g = 0; g < 8; ++g) {
            vec4 v = loadX4(base + (r + g) * p.sR);
            part[g] += OP == REDUCE_SUM ? v : v * v;
        }
    }
    vec4 acc = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
    for (; r < p.R; ++r) {
        vec4 v = loadX4(base + r * p.sR);
        acc += OP == REDUCE_SUM ? v : v * v;
    }
    vec4 result = p.scale * acc;
    uint at = (p.offO >> 2) + q;
    o4[at] = p.accumulate != 0.0 ? p.accumulate * o4[at] + result : result;
}
#endif

void main() {
    LOAD_PARAMS();
#ifdef TEXEL
    if (VEC4) {
        FOR_EACH_ELEMENT(q, (p.outer * p.inner) / 4u) reduce4(q);
        return;
    }
#endif
    FOR_EACH_ELEMENT(idx, p.outer * p.inner) {
        uint ou = idx / p.inner, j = idx % p.inner;
        uint base = p.offX + ou * p.sOuter + j * p.sInner;
        float acc = OP == REDUCE_MAX ? -1.0 / 0.0 : 0.0;
        int best = 0;
        uint r0 = 0;
        if (OP != REDUCE_MAX) {
            // Sixteen loads in flight, four float4 partial sums: a mean over 196 tokens 3 KB apart
            // waits on memory, not on the adds (lavapipe on 2 Xeon cores: lp_gap's step at
            // 256×196×768, mostly this mean, 165 → 106–118 ms).
            vec4 part[4] = vec4[4](vec4(0.0), vec4(0.0), vec4(0.0), vec4(0.0));
            for (; r0 + 16u <= p.R; r0 += 16u) {
                [[unroll]] for (uint g = 0; g < 4; ++g) {
                    uint q = base + (r0 + 4u * g) * p.sR;
                    vec4 v = vec4(loadX(q), loadX(q + p.sR), loadX(q + 2u * p.sR), loadX(q + 3u * p.sR));
                    part[g] += OP == REDUCE_SUM ? v : v * v;
                }
            }
            vec4 s4 = (part[0] + part[1]) + (part[2] + part[3]);
            acc = (s4.x + s4.y) + (s4.z + s4.w);
        }
        for (uint r = r0; r < p.R; ++r) {
            float v = loadX(base + r * p.sR);
            if (OP == REDUCE_SUM) acc += v;
            else if (OP == REDUCE_SUM_OF_SQUARES) acc += v * v;
            else if (r == 0u || v > acc) { acc = v; best = int(r); }
        }
        float result = p.scale * acc;
        if (OP == REDUCE_MAX) {
            if (p.accumulate == 0.0 || result > o[p.offO + idx]) {
                o[p.offO + idx] = result;
                argmax[p.offA + idx] = best + int(p.rOffset);
            }
        } else {
            o[p.offO + idx] = p.accumulate != 0.0 ? p.accumulate * o[p.offO + idx] + result : result;
        }
    }
}
