#version 460
// Training-mode BatchNorm backward, one workgroup per channel of x viewed as (outer, C, inner):
// sums dbeta = sum dy, dgamma = sum dy * xhat, then
// dx = gamma * rstd * (dy - dbeta / n - xhat * dgamma / n)  (EVAL: dx = gamma * rstd_running * dy).
#include "rows.glsl"
layout(constant_id = 1) const bool AFFINE = false;
layout(constant_id = 2) const bool EVAL = false;

layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) readonly buffer S { float stats[]; };
layout(set = 0, binding = 2) readonly buffer RV { float runningVar[]; };
layout(set = 0, binding = 3) readonly buffer G { float gamma[]; };
layout(set = 0, binding = 4) readonly buffer DY { float dy[]; };
layout(set = 0, binding = 5) buffer DX { float dx[]; };
layout(set = 0, binding = 6) buffer DG { float dgamma[]; };   // (C) then (C) for dbeta
layout(push_constant) uniform P { uint outer, C, inner, offX, offS, offRV, offG, offDY, offDX, offDG; float eps; float accumulate; } p;

void main() {
    uint n = p.outer * p.inner;
    FOR_EACH_ROW(ch, p.C) {
        float mean = stats[p.offS + 2u * ch];
        float rstd = EVAL ? inversesqrt(runningVar[p.offRV + ch] + p.eps) : stats[p.offS + 2u * ch + 1u];
        float sdy = 0.0, sdyx = 0.0;
        FOR_EACH_COL(e, n) {
            uint i = (e / p.inner) * p.C * p.inner + ch * p.inner + e % p.inner;
            float d = dy[p.offDY + i];
            sdy += d; sdyx += d * (x[p.offX + i] - mean) * rstd;
        }
        sdy = rowSum(sdy); sdyx = rowSum(sdyx);
        float g = AFFINE ? gamma[p.offG + ch] : 1.0;
        FOR_EACH_COL(e, n) {
            uint i = (e / p.inner) * p.C * p.inner + ch * p.inner + e % p.inner;
            float d = dy[p.offDY + i];
            float v = EVAL ? g * rstd * d : g * rstd * (d - sdy / float(n) - (x[p.offX + i] - mean) * rstd * sdyx / float(n));
            dx[p.offDX + i] = p.accumulate != 0.0 ? dx[p.offDX + i] + v : v;
        }
        if (AFFINE && gl_LocalInvocationID.x == 0u) {
            uint gi = p.offDG + ch, bi = p.offDG + p.C + ch;
            dgamma[gi] = p.accumulate != 0.0 ? dgamma[gi] + sdyx : sdyx;
            dgamma[bi] = p.accumulate != 0.0 ? dgamma[bi] + sdy : sdy;
        }
    }
}
