// Body of softmax.comp (x as a storage buffer) and its texel build (softmax_texel) (TEXEL: x as a uniform
// texel buffer of R32UI bits, which lavapipe reads by one call that gathers every lane's element
// instead of a loop over the lanes).
// y = softmax(scale * x + mask) over the last axis. x, y: (rows, cols) with row strides;
// mask (optional): (maskRows, cols), row r uses mask row (r + maskRowOffset) % maskRows.
#extension GL_EXT_samplerless_texture_functions : require  // texelFetch on textureBuffer (no sampler)
#include "rows.glsl"
layout(constant_id = 1) const bool HAS_MASK = false;
// IN_REGISTERS (texel builds, CPU devices): each lane keeps QUADS float4s of its row in registers —
// the row's quads t, t + TPR, … — read once as RGBA32UI texels, exponentiated once, and stored as
// float4s where a quad lies inside the row (element by element at its end). The host takes it
// where x's and y's offsets and row strides are multiples of 4 and cols ≤ 4 · TPR · QUADS (the
// attention's padded rows): one fetch call per four elements instead of three per element.
layout(constant_id = 2) const uint IN_REGISTERS = 0;   // 1: on
layout(constant_id = 3) const uint QUADS = 1;

#ifdef TEXEL
#pragma vkprobe_texel(0, IN_REGISTERS, 1, rgba32ui, r32ui)
layout(set = 0, binding = 0) uniform utextureBuffer xTex;
float loadX(uint i) { return uintBitsToFloat(texelFetch(xTex, int(i)).x); }
vec4 loadX4(uint q) { return uintBitsToFloat(texelFetch(xTex, int(q))); }
#else
layout(set = 0, binding = 0) readonly buffer X { float x[]; };
float loadX(uint i) { return x[i]; }
vec4 loadX4(uint q) { return vec4(x[4u * q], x[4u * q + 1u], x[4u * q + 2u], x[4u * q + 3u]); }
#endif
layout(set = 0, binding = 1) readonly buffer Mask { float mask[]; };
layout(set = 0, binding = 2) writeonly buffer Y { float y[]; };
layout(set = 0, binding = 2) writeonly buffer Y4 { vec4 y4[]; };
struct Params { uint rows, cols, offX, sX, offM, maskRows, maskRowOffset, offY, sY; float scale; };
PUSH_PARAMS(Params)

float logit(uint row, uint col) {
    float v = p.scale * loadX(p.offX + row * p.sX + col);
    if (HAS_MASK) v += mask[p.offM + ((row + p.maskRowOffset) % p.maskRows) * p.cols + col];
    return v;
}

// The row held in registers (IN_REGISTERS).
void softmaxQuads() {
    const float NEG_INF = -1.0 / 0.0;
    FOR_EACH_ROW(row, p.rows) {
        vec4 v[QUADS];
        float m = NEG_INF;
        [[unroll]] for (uint i = 0; i < QUADS; ++i) {
            uint c0 = 4u * (gl_LocalInvocationID.x + i * TPR);
            v[i] = vec4(NEG_INF);
            if (c0 < p.cols) {
                vec4 t = p.scale * loadX4((p.offX + row * p.sX + c0) >> 2);
                [[unroll]] for (uint j = 0; j < 4; ++j) {
                    if (c0 + j < p.cols) {
                        v[i][j] = t[j];
                        if (HAS_MASK) v[i][j] += mask[p.offM + ((row + p.maskRowOffset) % p.maskRows) * p.cols + c0 + j];
                    }
                }
            }
            m = max(m, max(max(v[i].x, v[i].y), max(v[i].z, v[i].w)));
        }
        m = rowMax(m);
        float s = 0.0;
        [[unroll]] for (uint i = 0; i < QUADS; ++i) {
            v[i] = exp(v[i] - m);
            s += (v[i].x + v[i].y) + (v[i].z + v[i].w);
        }
        float inv = 1.0 / rowSum(s);
        [[unroll]] for (uint i = 0; i < QUADS; ++i) {
            uint c0 = 4u * (gl_LocalInvocationID.x + i * TPR), at = p.offY + row * p.sY + c0;
            if (c0 + 4u <= p.cols) {
                y4[at >> 2] = v[i] * inv;
            } else {
                [[unroll]] for (uint j = 0; j < 4; ++j) if (c0 + j < p.cols) y[at + j] = v[i][j] * inv;
            }
        }
    }
}

void main() {
    LOAD_PARAMS();
    if (IN_REGISTERS == 1u) { softmaxQuads(); return; }
    FOR_EACH_ROW(row, p.rows) {
        float m = -1.0 / 0.0;
        FOR_EACH_COL(c, p.cols) m = max(m, logit(row, c));
        m = rowMax(m);
        float s = 0.0;
        FOR_EACH_COL(c, p.cols) s += exp(logit(row, c) - m);
        s = rowSum(s);
        float inv = 1.0 / s;
        FOR_EACH_COL(c, p.cols) y[p.offY + row * p.sY + c] = exp(logit(row, c) - m) * inv;
    }
}
