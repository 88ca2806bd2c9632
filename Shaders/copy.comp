#version 460
// Strided N-d copy (up to 6 axes): out[idx(i, so)] = in[idx(i, si)] for every index i of `shape`.
// Serves transpose, permute, contiguous, slice, concat (into slices) and f32/f16 conversion.
#include "common.glsl"
#if defined(SRC_F16) || defined(DST_F16)
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#endif
#ifdef SRC_F16
#define SRC float16_t
#else
#define SRC float
#endif
#ifdef DST_F16
#define DST float16_t
#else
#define DST float
#endif

layout(local_size_x_id = 0) in;
// Source and destination dense in the same layout: no index arithmetic.
layout(constant_id = 1) const bool FLAT = false;
layout(set = 0, binding = 0) readonly buffer In { SRC src[]; };
layout(set = 0, binding = 1) writeonly buffer Out { DST dst[]; };
layout(push_constant) uniform P {
    uint n, offIn, offOut;
    uint shape[6];
    uint sIn[6];
    uint sOut[6];
    uint magic[6];   // fastDivide multipliers of shape[d]
    uint shifts;     // their shifts, 5 bits per axis
} p;

void main() {
    if (FLAT) {
        FOR_EACH_ELEMENT(i, p.n) dst[p.offOut + i] = DST(float(src[p.offIn + i]));
        return;
    }
    FOR_EACH_ELEMENT(i, p.n) {
        uint r = i, oi = p.offIn, oo = p.offOut;
        [[unroll]] for (int d = 5; d >= 0; --d) {
            if (p.shape[d] == 1u) continue;   // padding and unit axes (uniform branch)
            uint q = fastDivide(r, p.magic[d], (p.shifts >> (5u * uint(d))) & 31u);
            uint c = r - q * p.shape[d];
            r = q;
            oi += c * p.sIn[d];
            oo += c * p.sOut[d];
        }
        dst[oo] = DST(float(src[oi]));
    }
}
