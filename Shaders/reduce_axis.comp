#version 460
// x viewed as (outer, R, inner) with strides; out[o, j] = reduce_r x[o, r, j] (scaled by `scale`).
// MAX also writes the argmax (first index of the maximum) as int32.
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint OP = 0;   // 0 sum, 1 max (+argmax), 2 sum of squares

layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) buffer O { float o[]; };
layout(set = 0, binding = 2) writeonly buffer A { int argmax[]; };
layout(push_constant) uniform P {
    uint outer, R, inner;
    uint sOuter, sR, sInner;
    uint offX, offO, offA;
    float scale;
    float accumulate;   // o = accumulate * o + result
} p;

void main() {
    FOR_EACH_ELEMENT(idx, p.outer * p.inner) {
        uint ou = idx / p.inner, j = idx % p.inner;
        uint base = p.offX + ou * p.sOuter + j * p.sInner;
        float acc = OP == 1u ? -1.0 / 0.0 : 0.0;
        int best = 0;
        for (uint r = 0; r < p.R; ++r) {
            float v = x[base + r * p.sR];
            if (OP == 0u) acc += v;
            else if (OP == 2u) acc += v * v;
            else if (r == 0u || v > acc) { acc = v; best = int(r); }
        }
        float result = p.scale * acc;
        o[p.offO + idx] = p.accumulate != 0.0 ? p.accumulate * o[p.offO + idx] + result : result;
        if (OP == 1u) argmax[p.offA + idx] = best;
    }
}
