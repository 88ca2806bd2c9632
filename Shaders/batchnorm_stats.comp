#version 460
// Per-channel batch statistics of x viewed as (outer, C, inner), contiguous: mean and
// rstd = 1/sqrt(biased var + eps) into stats (C, 2); optionally the running update
// running = (1 - momentum) running + momentum * (mean, unbiased var). One workgroup per channel.
// PASS 0: the whole of x in one dispatch. x too large to bind is taken in pieces of `outer`:
// PASS 1 adds each piece's sum to stats[2c]; PASS 2 adds each piece's squared deviations from
// mean = stats[2c] / total to stats[2c+1], and the last piece (finalize) writes mean and rstd.
#include "rows.glsl"
layout(constant_id = 1) const bool UPDATE_RUNNING = true;
layout(constant_id = 2) const uint PASS = 0;
// PASS 0, channels last (inner 1), C and the offset of x multiples of 4: invocation x owns four
// channels and sums their columns with float4 loads, each in order over the rows (the row path's
// strided loads and two index divisions per value are scalarised on lavapipe: 0.86 ms for a
// token BatchNorm of 196×768).
layout(constant_id = 3) const bool CHANNEL_QUADS = false;

layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 0) readonly buffer XQ { vec4 x4[]; };
layout(set = 0, binding = 1) buffer S { float stats[]; };
layout(set = 0, binding = 2) buffer RM { float runningMean[]; };
layout(set = 0, binding = 3) buffer RV { float runningVar[]; };
struct Params {
    uint outer, C, inner, offX, offS, offRM, offRV;
    uint total;        // values per channel over every piece
    uint accumulate;   // add to what earlier pieces wrote
    uint finalize;     // PASS 2: this is the last piece
    float eps, momentum;
};
PUSH_PARAMS(Params)

float value(uint ch, uint e) { return x[p.offX + (e / p.inner) * p.C * p.inner + ch * p.inner + e % p.inner]; }

void finish(uint ch, float mean, float var) {
    stats[p.offS + 2u * ch] = mean;
    stats[p.offS + 2u * ch + 1u] = inversesqrt(var + p.eps);
    if (UPDATE_RUNNING) {
        float unbiased = p.total > 1u ? var * float(p.total) / float(p.total - 1u) : var;
        runningMean[p.offRM + ch] = (1.0 - p.momentum) * runningMean[p.offRM + ch] + p.momentum * mean;
        runningVar[p.offRV + ch] = (1.0 - p.momentum) * runningVar[p.offRV + ch] + p.momentum * unbiased;
    }
}

void main() {
    LOAD_PARAMS();
    if (CHANNEL_QUADS) {
        uint q = gl_GlobalInvocationID.x, quads = p.C / 4u, base = p.offX >> 2;
        if (q >= quads) return;
        vec4 s = vec4(0.0);
        for (uint r = 0; r < p.outer; ++r) s += x4[base + r * quads + q];
        vec4 mean = s / float(p.total), v = vec4(0.0);
        for (uint r = 0; r < p.outer; ++r) { vec4 d = x4[base + r * quads + q] - mean; v += d * d; }
        v /= float(p.total);
        [[unroll]] for (uint j = 0; j < 4; ++j) finish(4u * q + j, mean[j], v[j]);
        return;
    }
    uint n = p.outer * p.inner;
    FOR_EACH_ROW(ch, p.C) {
        if (PASS == 1u) {
            float s = 0.0;
            FOR_EACH_COL(e, n) s += value(ch, e);
            s = rowSum(s);
            if (gl_LocalInvocationID.x == 0u) stats[p.offS + 2u * ch] = (p.accumulate != 0u ? stats[p.offS + 2u * ch] : 0.0) + s;
            continue;
        }
        float mean;
        if (PASS == 0u) {
            float s = 0.0;
            FOR_EACH_COL(e, n) s += value(ch, e);
            mean = rowSum(s) / float(p.total);
        } else {
            mean = stats[p.offS + 2u * ch] / float(p.total);
        }
        float v = 0.0;
        FOR_EACH_COL(e, n) { float d = value(ch, e) - mean; v += d * d; }
        v = rowSum(v);
        if (gl_LocalInvocationID.x == 0u) {
            if (PASS == 0u) {
                finish(ch, mean, v / float(p.total));
            } else {
                float sq = (p.accumulate != 0u ? stats[p.offS + 2u * ch + 1u] : 0.0) + v;
                if (p.finalize != 0u) finish(ch, mean, sq / float(p.total)); else stats[p.offS + 2u * ch + 1u] = sq;
            }
        }
    }
}
