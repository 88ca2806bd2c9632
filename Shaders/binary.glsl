// Body of binary.comp (x, y as storage buffers) and its texel build (binary_texel) (TEXEL: as uniform texel
// buffers of R32UI words, read by a vector gather on lavapipe instead of a loop over the lanes).
// z = x (op) y with broadcasting over up to 4 axes: z contiguous with shape (d0, d1, d2, d3);
// x and y read through strides (0 on broadcast axes).
#extension GL_EXT_samplerless_texture_functions : require  // texelFetch on textureBuffer (no sampler)
#include "common.glsl"
#include "codes.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint OP = 0;   // an OP_* code (codes.glsl)
// x and y dense in z's layout (no broadcasting): no index arithmetic (integer division is
// scalarised on CPU drivers, which made lavapipe's adds run at ~1 GB/s).
layout(constant_id = 2) const bool FLAT = false;
// Four outputs per float4 store: n and z's offset multiples of 4.
layout(constant_id = 3) const bool VEC4 = false;
// Axes that locate decomposes, the last AXES of the four (the host merges axes that every
// operand steps through as one, MergedAxes.swift).
layout(constant_id = 4) const uint AXES = 4;
// How a float4 of outputs (VEC4, its four in one row: FLAT or d3 a multiple of 4) reads each
// operand: QUAD_ELEMENTS one fetch per element; QUAD_WHOLE the four contiguous and on the
// four-element grid, one float4 (the texel view is then RGBA32UI, where lavapipe pays per fetch
// call: a float4 add was 8 calls); QUAD_SPLAT stride 0 along the last axis, one element for all four.
const uint QUAD_ELEMENTS = 0u, QUAD_WHOLE = 1u, QUAD_SPLAT = 2u;
layout(constant_id = 5) const uint QUAD_X = 0u;   // QUAD_*
layout(constant_id = 6) const uint QUAD_Y = 0u;

#ifdef TEXEL
#pragma vkprobe_texel(0, QUAD_X, 1, rgba32ui, r32ui)
#pragma vkprobe_texel(1, QUAD_Y, 1, rgba32ui, r32ui)
layout(set = 0, binding = 0) uniform utextureBuffer texX;
layout(set = 0, binding = 1) uniform utextureBuffer texY;
float X1(uint i) { return uintBitsToFloat(texelFetch(texX, int(i)).x); }
float Y1(uint i) { return uintBitsToFloat(texelFetch(texY, int(i)).x); }
vec4 X4(uint q) { return uintBitsToFloat(texelFetch(texX, int(q))); }
vec4 Y4(uint q) { return uintBitsToFloat(texelFetch(texY, int(q))); }
#else
layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 0) readonly buffer XQ { vec4 x4[]; };
layout(set = 0, binding = 1) readonly buffer Y { float y[]; };
layout(set = 0, binding = 1) readonly buffer YQ { vec4 y4[]; };
float X1(uint i) { return x[i]; }
float Y1(uint i) { return y[i]; }
vec4 X4(uint q) { return x4[q]; }
vec4 Y4(uint q) { return y4[q]; }
#endif
layout(set = 0, binding = 2) writeonly buffer Z { float z[]; };
layout(set = 0, binding = 2) writeonly buffer Z4 { vec4 z4[]; };
struct Params {
    uint n, d1, d2, d3;
    uint offX, offY, offZ;
    uint sx0, sx1, sx2, sx3;
    uint sy0, sy1, sy2, sy3;
    float alpha, beta;   // z = alpha * x (op) beta * y
    uint m1, m2, m3;     // fastDivide multipliers of d1, d2, d3
    uint shifts;         // their shifts, 5 bits each (d1 at bit 0)
};
PUSH_PARAMS(Params)

float apply(float a, float b) {
    a *= p.alpha; b *= p.beta;
    return OP == OP_ADD ? a + b : OP == OP_SUBTRACT ? a - b : OP == OP_MULTIPLY ? a * b : a / b;
}
vec4 apply4(vec4 a, vec4 b) {
    a *= p.alpha; b *= p.beta;
    return OP == OP_ADD ? a + b : OP == OP_SUBTRACT ? a - b : OP == OP_MULTIPLY ? a * b : a / b;
}

// The four operand elements from index i on (step apart) under a float4 of outputs.
vec4 quadX(uint i, uint step) {
    if (QUAD_X == QUAD_WHOLE) return X4(i >> 2);
    if (QUAD_X == QUAD_SPLAT) return vec4(X1(i));
    return vec4(X1(i), X1(i + step), X1(i + 2u * step), X1(i + 3u * step));
}
vec4 quadY(uint i, uint step) {
    if (QUAD_Y == QUAD_WHOLE) return Y4(i >> 2);
    if (QUAD_Y == QUAD_SPLAT) return vec4(Y1(i));
    return vec4(Y1(i), Y1(i + step), Y1(i + 2u * step), Y1(i + 3u * step));
}

// Elements of x and y under z's linear index i.
void locate(uint i, out uint ix, out uint iy) {
    if (AXES == 1u) {
        ix = p.offX + i * p.sx3; iy = p.offY + i * p.sy3;
        return;
    }
    uint r = fastDivide(i, p.m3, (p.shifts >> 10) & 31u), i3 = i - r * p.d3;
    if (AXES == 2u) {
        ix = p.offX + r * p.sx2 + i3 * p.sx3; iy = p.offY + r * p.sy2 + i3 * p.sy3;
        return;
    }
    uint q = fastDivide(r, p.m2, (p.shifts >> 5) & 31u), i2 = r - q * p.d2;
    if (AXES == 3u) {
        ix = p.offX + q * p.sx1 + i2 * p.sx2 + i3 * p.sx3; iy = p.offY + q * p.sy1 + i2 * p.sy2 + i3 * p.sy3;
        return;
    }
    uint i0 = fastDivide(q, p.m1, p.shifts & 31u), i1 = q - i0 * p.d1;
    ix = p.offX + i0 * p.sx0 + i1 * p.sx1 + i2 * p.sx2 + i3 * p.sx3;
    iy = p.offY + i0 * p.sy0 + i1 * p.sy1 + i2 * p.sy2 + i3 * p.sy3;
}

void main() {
    LOAD_PARAMS();
    if (VEC4) {
        uint stepX = FLAT ? 1u : p.sx3, stepY = FLAT ? 1u : p.sy3;
        FOR_EACH_ELEMENT(g, p.n / 4u) {
            uint ix = p.offX + 4u * g, iy = p.offY + 4u * g;
            if (!FLAT) locate(4u * g, ix, iy);
            if (FLAT || p.d3 % 4u == 0u) {
                z4[(p.offZ >> 2) + g] = apply4(quadX(ix, stepX), quadY(iy, stepY));
            } else {
                // The four may straddle rows: locate each (index arithmetic is cheap next to a store).
                vec4 v;
                v.x = apply(X1(ix), Y1(iy));
                locate(4u * g + 1u, ix, iy); v.y = apply(X1(ix), Y1(iy));
                locate(4u * g + 2u, ix, iy); v.z = apply(X1(ix), Y1(iy));
                locate(4u * g + 3u, ix, iy); v.w = apply(X1(ix), Y1(iy));
                z4[(p.offZ >> 2) + g] = v;
            }
        }
        return;
    }
    if (FLAT) {
        FOR_EACH_ELEMENT(i, p.n) z[p.offZ + i] = apply(X1(p.offX + i), Y1(p.offY + i));
        return;
    }
    FOR_EACH_ELEMENT(i, p.n) {
        uint ix, iy;
        locate(i, ix, iy);
        z[p.offZ + i] = apply(X1(ix), Y1(iy));
    }
}
