#version 460
// Rotary position embedding in place (timm's apply_rot_embed): x is a (B, T, H, hd) view with a
// contiguous last axis (q or k inside a packed projection), cos and sin dense (T, hd) f32 tables.
// Each invocation rotates one pair (a, b) of a head:
//   out_a = x_a cos_a − x_b sin_a,   out_b = x_b cos_b + x_a sin_b
// with (a, b) = (2j, 2j + 1) (interleaved, EVA-02, PE) or (j, j + hd/2) (half, DINOv3).
// INVERSE applies the transpose (the backward): out_a = x_a cos_a + x_b sin_b, out_b = x_b cos_b − x_a sin_a.
#include "common.glsl"
#ifdef STORAGE_F16
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#define T_ float16_t
#else
#define T_ float
#endif
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const bool HALF = false;
layout(constant_id = 2) const bool INVERSE = false;

layout(set = 0, binding = 0) buffer X { T_ x[]; };
layout(set = 0, binding = 1) readonly buffer C { float cosTable[]; };
layout(set = 0, binding = 2) readonly buffer S { float sinTable[]; };
struct Params { uint pairs, halfDim, heads, tokens, offX, sB, sT, sH, offC, offS; };
PUSH_PARAMS(Params)

void main() {
    LOAD_PARAMS();
    FOR_EACH_ELEMENT(i, p.pairs) {
        uint j = i % p.halfDim;
        uint r = i / p.halfDim;
        uint h = r % p.heads;
        r /= p.heads;
        uint t = r % p.tokens;
        uint b = r / p.tokens;
        uint ia = HALF ? j : 2u * j;
        uint ib = HALF ? j + p.halfDim : 2u * j + 1u;
        uint base = p.offX + b * p.sB + t * p.sT + h * p.sH;
        uint row = t * 2u * p.halfDim;
        float xa = float(x[base + ia]), xb = float(x[base + ib]);
        float ca = cosTable[p.offC + row + ia], cb = cosTable[p.offC + row + ib];
        float sa = sinTable[p.offS + row + ia], sb = sinTable[p.offS + row + ib];
        if (INVERSE) {
            x[base + ia] = T_(xa * ca + xb * sb);
            x[base + ib] = T_(xb * cb - xa * sa);
        } else {
            x[base + ia] = T_(xa * ca - xb * sa);
            x[base + ib] = T_(xb * cb + xa * sb);
        }
    }
}
