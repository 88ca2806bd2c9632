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

layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) readonly buffer S { float stats[]; };
layout(set = 0, binding = 2) readonly buffer RV { float runningVar[]; };
layout(set = 0, binding = 3) readonly buffer G { float gamma[]; };
layout(set = 0, binding = 4) readonly buffer DY { float dy[]; };
layout(set = 0, binding = 5) buffer DX { float dx[]; };
layout(set = 0, binding = 6) buffer DG { float sums[]; };   // dgamma (C) then dbeta (C)
struct Params {
    uint outer, C, inner, offX, offS, offRV, offG, offDY, offDX, offDG;
    uint total;   // values per channel over every piece
    float eps;
    float accumulate;
};
PUSH_PARAMS(Params)

uint index(uint ch, uint e) { return (e / p.inner) * p.C * p.inner + ch * p.inner + e % p.inner; }

void main() {
    LOAD_PARAMS();
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
