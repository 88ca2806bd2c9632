#version 460
// Transpose in 4×4 blocks for CPU devices (lavapipe), where the strided copy pays a gather per
// element: out(b, r, c) = in(b, r, c) for a source contiguous along r and a destination contiguous
// along c. A block is four 4-element texel reads (source columns c..c+3, rows r..r+3) and four
// 4-element stores — 8 memory operations for 16 elements instead of 20. Moves bits: 32-bit words
// (f32) or, with WORDS16, 16-bit ones (f16, bf16) stored two to a 32-bit word.
#extension GL_EXT_samplerless_texture_functions : require  // texelFetch on textureBuffer (no sampler)
#include "common.glsl"

layout(local_size_x_id = 0) in;
#ifdef WORDS16
#pragma vkprobe_texel(0, rgba16ui)
#else
#pragma vkprobe_texel(0, rgba32ui)
#endif
layout(set = 0, binding = 0) uniform utextureBuffer src;   // RGBA32UI, or RGBA16UI with WORDS16
#ifdef WORDS16
layout(set = 0, binding = 1) writeonly buffer Out { uvec2 dst[]; };
#else
layout(set = 0, binding = 1) writeonly buffer Out { uvec4 dst[]; };
#endif
// Offsets and strides in 4-element units; rq, cq: 4-element blocks along r and c.
struct Params {
    uint blocks;           // batch × rq × cq
    uint offIn, offOut;
    uint sInB, sInC;       // source: batch and column strides (the row stride is 1)
    uint sOutB, sOutR;     // destination: batch and row strides (the column stride is 1)
    uint cq, magicC;       // blocks along c, its fastDivide multiplier
    uint rq, magicR;
    uint shifts;           // shift of cq in bits 0–4, of rq in bits 5–9
};
PUSH_PARAMS(Params)

void main() {
    LOAD_PARAMS();
    FOR_EACH_ELEMENT(g, p.blocks) {
        uint q = fastDivide(g, p.magicC, p.shifts & 31u);
        uint c = g - q * p.cq;
        uint b = fastDivide(q, p.magicR, (p.shifts >> 5) & 31u);
        uint r = q - b * p.rq;
        uint at = p.offIn + b * p.sInB + 4u * c * p.sInC + r;
        uvec4 t0 = texelFetch(src, int(at)), t1 = texelFetch(src, int(at + p.sInC));
        uvec4 t2 = texelFetch(src, int(at + 2u * p.sInC)), t3 = texelFetch(src, int(at + 3u * p.sInC));
        uint out0 = p.offOut + b * p.sOutB + 4u * r * p.sOutR + c;
#ifdef WORDS16
        dst[out0] = uvec2(t0.x | (t1.x << 16), t2.x | (t3.x << 16));
        dst[out0 + p.sOutR] = uvec2(t0.y | (t1.y << 16), t2.y | (t3.y << 16));
        dst[out0 + 2u * p.sOutR] = uvec2(t0.z | (t1.z << 16), t2.z | (t3.z << 16));
        dst[out0 + 3u * p.sOutR] = uvec2(t0.w | (t1.w << 16), t2.w | (t3.w << 16));
#else
        dst[out0] = uvec4(t0.x, t1.x, t2.x, t3.x);
        dst[out0 + p.sOutR] = uvec4(t0.y, t1.y, t2.y, t3.y);
        dst[out0 + 2u * p.sOutR] = uvec4(t0.z, t1.z, t2.z, t3.z);
        dst[out0 + 3u * p.sOutR] = uvec4(t0.w, t1.w, t2.w, t3.w);
#endif
    }
}
