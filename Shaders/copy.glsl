// Body of copy.comp (source as a storage buffer) and its texel build (copy_texel) (TEXEL: the source as a
// uniform texel buffer of one element per texel, which lavapipe reads by a vector gather instead
// of a loop over the lanes; f32 read as R32UI bits so that every pattern copies exactly).
// Strided N-d copy (up to 6 axes): out[idx(i, so)] = in[idx(i, si)] for every index i of `shape`.
// Serves transpose, permute, contiguous, slice, concat (into slices) and f32/f16/bf16 conversion.
#extension GL_EXT_samplerless_texture_functions : require  // texelFetch on textureBuffer (no sampler)
#include "common.glsl"
#if defined(SRC_F16) || defined(DST_F16)
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#endif
#if defined(SRC_BF16) || defined(DST_BF16)
#extension GL_EXT_shader_16bit_storage : require
#endif
// Values travel as f32: widening f16 or bf16 is exact, and f32 → bf16 works on the bits (no
// arithmetic, so denormals and NaN payloads are not flushed on the way).
#ifdef SRC_F16
#define SRC float16_t
#define SRC4 f16vec4
#define SRC_TO_FLOAT(x) float(x)
#define SRC4_TO_FLOAT(x) vec4(x)
#elif defined(SRC_BF16)
#define SRC uint16_t
#define SRC4 u16vec4
#define SRC_TO_FLOAT(x) bf16ToFloat(uint(x))
#define SRC4_TO_FLOAT(x) bf16ToFloat4(uvec4(x))
#else
#define SRC float
#define SRC4 vec4
#define SRC_TO_FLOAT(x) (x)
#define SRC4_TO_FLOAT(x) (x)
#endif
#ifdef DST_F16
#define DST float16_t
#define DST4 f16vec4
#define TO_DST(v) DST(v)
#define TO_DST4(v) DST4(v)
#elif defined(DST_BF16)
#define DST uint16_t
#define DST4 u16vec4
#define TO_DST(v) DST(floatToBF16(floatBitsToUint(v)))
#define TO_DST4(v) DST4(uvec4(floatToBF16(floatBitsToUint((v).x)), floatToBF16(floatBitsToUint((v).y)), \
                              floatToBF16(floatBitsToUint((v).z)), floatToBF16(floatBitsToUint((v).w))))
#else
#define DST float
#define DST4 vec4
#define TO_DST(v) (v)
#define TO_DST4(v) (v)
#endif

layout(local_size_x_id = 0) in;
// Source and destination dense in the same layout: no index arithmetic.
layout(constant_id = 1) const bool FLAT = false;
// Four consecutive outputs per step, stored as one float4: n and the output offset multiples of 4,
// and (unless FLAT) either the output contiguous, or the last axis a multiple of 4 long,
// contiguous in the output, every other output stride a multiple of 4.
layout(constant_id = 2) const bool VEC4 = false;
// Axes that locate decomposes, the last AXES of the six (the host drops unit axes and merges
// axes that are one in both layouts): a fixed count compiles to straight-line index arithmetic.
layout(constant_id = 3) const uint AXES = 6;
// With VEC4 (and FLAT or the last axis a multiple of 4 long): the source's four elements under a
// float4 of outputs contiguous and on the four-element grid, read as one float4 (a texel view of
// four elements: lavapipe pays per fetch call). The host binds the view to match.
layout(constant_id = 4) const bool QUAD_SRC = false;
#ifdef TEXEL
#ifdef SRC_F16
#pragma vkprobe_texel(0, QUAD_SRC, rgba16f, r16f)
layout(set = 0, binding = 0) uniform textureBuffer srcTex;
float loadSrc(uint i) { return texelFetch(srcTex, int(i)).x; }
vec4 loadSrc4(uint q) { return texelFetch(srcTex, int(q)); }
#elif defined(SRC_BF16)
#pragma vkprobe_texel(0, QUAD_SRC, rgba16ui, r16ui)
layout(set = 0, binding = 0) uniform utextureBuffer srcTex;
float loadSrc(uint i) { return bf16ToFloat(texelFetch(srcTex, int(i)).x); }
vec4 loadSrc4(uint q) { return bf16ToFloat4(texelFetch(srcTex, int(q))); }
#else
#pragma vkprobe_texel(0, QUAD_SRC, rgba32ui, r32ui)
layout(set = 0, binding = 0) uniform utextureBuffer srcTex;
float loadSrc(uint i) { return uintBitsToFloat(texelFetch(srcTex, int(i)).x); }
vec4 loadSrc4(uint q) { return uintBitsToFloat(texelFetch(srcTex, int(q))); }
#endif
#else
layout(set = 0, binding = 0) readonly buffer In { SRC src[]; };
layout(set = 0, binding = 0) readonly buffer In4 { SRC4 src4[]; };
float loadSrc(uint i) { return SRC_TO_FLOAT(src[i]); }
vec4 loadSrc4(uint q) { return SRC4_TO_FLOAT(src4[q]); }
#endif
layout(set = 0, binding = 1) writeonly buffer Out { DST dst[]; };
layout(set = 0, binding = 1) writeonly buffer Out4 { DST4 dst4[]; };
struct Params {
    uint n, offIn, offOut;
    uint shape[6];
    uint sIn[6];
    uint sOut[6];
    uint magic[6];   // fastDivide multipliers of shape[d]
    uint shifts;     // their shifts, 5 bits per axis
};
PUSH_PARAMS(Params)

// Source and destination element of linear index i.
void locate(uint i, out uint oi, out uint oo) {
    uint r = i;
    oi = p.offIn; oo = p.offOut;
    [[unroll]] for (int d = 5; d >= 6 - int(AXES); --d) {
        uint q = fastDivide(r, p.magic[d], (p.shifts >> (5u * uint(d))) & 31u);
        uint c = r - q * p.shape[d];
        r = q;
        oi += c * p.sIn[d];
        oo += c * p.sOut[d];
    }
}

void main() {
    LOAD_PARAMS();
    if (VEC4) {
        uint step = FLAT ? 1u : p.sIn[5];
        FOR_EACH_ELEMENT(g, p.n / 4u) {
            uint oi = p.offIn + 4u * g, oo = p.offOut + 4u * g;
            if (!FLAT) locate(4u * g, oi, oo);
            if (FLAT || p.shape[5] % 4u == 0u) {
                dst4[oo >> 2] = TO_DST4(QUAD_SRC ? loadSrc4(oi >> 2)
                                                 : vec4(loadSrc(oi), loadSrc(oi + step), loadSrc(oi + 2u * step), loadSrc(oi + 3u * step)));
            } else {
                // A contiguous output whose last axis is not a multiple of 4: the four may straddle
                // rows of the source, so locate each.
                vec4 v;
                v.x = loadSrc(oi);
                uint o;
                locate(4u * g + 1u, oi, o); v.y = loadSrc(oi);
                locate(4u * g + 2u, oi, o); v.z = loadSrc(oi);
                locate(4u * g + 3u, oi, o); v.w = loadSrc(oi);
                dst4[oo >> 2] = TO_DST4(v);
            }
        }
        return;
    }
    if (FLAT) {
        FOR_EACH_ELEMENT(i, p.n) dst[p.offOut + i] = TO_DST(loadSrc(p.offIn + i));
        return;
    }
    FOR_EACH_ELEMENT(i, p.n) {
        uint oi, oo;
        locate(i, oi, oo);
        dst[oo] = TO_DST(loadSrc(oi));
    }
}
