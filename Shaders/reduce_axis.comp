#version 460
// x viewed as (outer, R, inner) with strides; out[o, j] = reduce_r x[o, r, j] (scaled by `scale`).
// MAX also writes the argmax (first index of the maximum, plus rOffset) as int32.
// With accumulate != 0 a piece of R combines with what earlier pieces wrote: sums become
// accumulate * out + result; MAX keeps the earlier maximum unless this piece's is larger.
#include "common.glsl"
#include "codes.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint OP = 0;   // a REDUCE_* code (codes.glsl); REDUCE_MAX also writes the argmax

layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) buffer O { float o[]; };
layout(set = 0, binding = 2) writeonly buffer A { int argmax[]; };
layout(push_constant) uniform P {
    uint outer, R, inner;
    uint sOuter, sR, sInner;
    uint offX, offO, offA;
    uint rOffset;       // index of this piece's first r along the whole axis (argmax)
    float scale;
    float accumulate;
} p;

void main() {
    FOR_EACH_ELEMENT(idx, p.outer * p.inner) {
        uint ou = idx / p.inner, j = idx % p.inner;
        uint base = p.offX + ou * p.sOuter + j * p.sInner;
        float acc = OP == REDUCE_MAX ? -1.0 / 0.0 : 0.0;
        int best = 0;
        for (uint r = 0; r < p.R; ++r) {
            float v = x[base + r * p.sR];
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
