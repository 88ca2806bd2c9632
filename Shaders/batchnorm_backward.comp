#version 460
// BatchNorm backward, one workgroup per channel of x viewed as (outer, C, inner):
// sums dbeta = sum dy, dgamma = sum dy * xhat, then
// dx = gamma * rstd * (dy - dbeta / n - xhat * dgamma / n)  (EVAL: dx = gamma * rstd_running * dy).
// PASS 0: the whole of x in one dispatch (dgamma, dbeta written when AFFINE). x too large to bind
// is taken in pieces of `outer`: PASS 1 adds each piece's sums to sums (C) then (C); PASS 2
// writes each piece's dx from the complete sums.
#include "rows.glsl"
layout(constant_id = 1) const bool AFFINE = false;
layout(constant_id = 2) const bool EVAL = false;
layout(constant_id = 3) const uint PASS = 0;
// PASS 0 in training, channels last (inner 1), C and the offsets of x, dy and dx multiples of 4:
// invocation x owns four channels, float4 loads and stores over the rows in order (as
// batchnorm_stats.comp's CHANNEL_QUADS).
layout(constant_id = 4) const bool CHANNEL_QUADS = false;

layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 0) readonly buffer XQ { vec4 x4[]; };
layout(set = 0, binding = 1) readonly buffer S { float stats[]; };
layout(set = 0, binding = 2) readonly buffer RV { float runningVar[]; };
layout(set = 0, binding = 3) readonly buffer G { float gamma[]; };
layout(set = 0, binding = 4) readonly buffer DY { float dy[]; };
layout(set = 0, binding = 4) readonly buffer DYQ { vec4 dy4[]; };
layout(set = 0, binding = 5) buffer DX { float dx[]; };
layout(set = 0, binding = 5) buffer DXQ { vec4 dx4[]; };
layout(set = 0, binding = 6) buffer DG { float sums[]; };   // dgamma (C) then dbeta (C)
struct Params {
    uint outer, C, inner, offX, offS, offRV, offG, offDY, offDX, offDG;
    uint total;   // values per channel over every piece
    float eps;
    float accumulate;
};
PUSH_PARAMS(Params)

uint index(uint ch, uint e) { return (e / p.inner) * p.C * p.inner + ch * p.inner + e % p.inner; }

void quadsMain() {
    uint q = gl_GlobalInvocationID.x, quads = p.C / 4u;
    if (q >= quads) return;
    vec4 mean, rstd, g = vec4(1.0);
    [[unroll]] for (uint j = 0; j < 4; ++j) {
        mean[j] = stats[p.offS + 8u * q + 2u * j];
        rstd[j] = stats[p.offS + 8u * q + 2u * j + 1u];
        if (AFFINE) g[j] = gamma[p.offG + 4u * q + j];
    }
    uint bx = p.offX >> 2, bdy = p.offDY >> 2, bdx = p.offDX >> 2;
    vec4 sdy = vec4(0.0), sdyx = vec4(0.0);
    for (uint r = 0; r < p.outer; ++r) {
        vec4 d = dy4[bdy + r * quads + q];
        sdy += d; sdyx += d * (x4[bx + r * quads + q] - mean) * rstd;
    }
    float total = float(p.total);
    for (uint r = 0; r < p.outer; ++r) {
        uint o = bdx + r * quads + q;
        vec4 v = g * rstd * (dy4[bdy + r * quads + q] - sdy / total - (x4[bx + r * quads + q] - mean) * rstd * sdyx / total);
        dx4[o] = p.accumulate != 0.0 ? dx4[o] + v : v;
    }
    if (AFFINE) {
        [[unroll]] for (uint j = 0; j < 4; ++j) {
            uint gi = p.offDG + 4u * q + j, bi = p.offDG + p.C + 4u * q + j;
            sums[gi] = p.accumulate != 0.0 ? sums[gi] + sdyx[j] : sdyx[j];
            sums[bi] = p.accumulate != 0.0 ? sums[bi] + sdy[j] : sdy[j];
        }
    }
}

void main() {
    LOAD_PARAMS();
    if (CHANNEL_QUADS) { quadsMain(); return; }
    uint n = p.outer * p.inner;
    FOR_EACH_ROW(ch, p.C) {
        float mean = stats[p.offS + 2u * ch];
        float rstd = EVAL ? inversesqrt(runningVar[p.offRV + ch] + p.eps) : stats[p.offS + 2u * ch + 1u];
        float sdy = 0.0, sdyx = 0.0;
        if (!EVAL && PASS != 2u) {
            FOR_EACH_COL(e, n) {
                uint i = index(ch, e);
                float d = dy[p.offDY + i];
                sdy += d; sdyx += d * (x[p.offX + i] - mean) * rstd;
            }
            sdy = rowSum(sdy); sdyx = rowSum(sdyx);
        }
        if (PASS == 1u) {
            if (gl_LocalInvocationID.x == 0u) {
                uint gi = p.offDG + ch, bi = p.offDG + p.C + ch;
                sums[gi] = p.accumulate != 0.0 ? sums[gi] + sdyx : sdyx;
                sums[bi] = p.accumulate != 0.0 ? sums[bi] + sdy : sdy;
            }
            continue;
        }
        if (PASS == 2u && !EVAL) { sdyx = sums[p.offDG + ch]; sdy = sums[p.offDG + p.C + ch]; }
        float g = AFFINE ? gamma[p.offG + ch] : 1.0;
        float total = float(p.total);
        FOR_EACH_COL(e, n) {
            uint i = index(ch, e);
            float d = dy[p.offDY + i];
            float v = EVAL ? g * rstd * d : g * rstd * (d - sdy / total - (x[p.offX + i] - mean) * rstd * sdyx / total);
            dx[p.offDX + i] = p.accumulate != 0.0 ? dx[p.offDX + i] + v : v;
        }
        if (PASS == 0u && AFFINE && gl_LocalInvocationID.x == 0u) {
            uint gi = p.offDG + ch, bi = p.offDG + p.C + ch;
            sums[gi] = p.accumulate != 0.0 ? sums[gi] + sdyx : sdyx;
            sums[bi] = p.accumulate != 0.0 ? sums[bi] + sdy : sdy;
        }
    }
}
