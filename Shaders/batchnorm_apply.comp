#version 460
// y = (x - mean[c]) * rstd[c] * gamma[c] + beta[c], x viewed as (outer, C, inner) contiguous.
// Statistics from stats (C, 2) (training) or from the running buffers (EVAL).
#include "common.glsl"
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const bool AFFINE = false;
layout(constant_id = 2) const bool EVAL = false;

layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) readonly buffer S { float stats[]; };
layout(set = 0, binding = 2) readonly buffer RM { float runningMean[]; };
layout(set = 0, binding = 3) readonly buffer RV { float runningVar[]; };
layout(set = 0, binding = 4) readonly buffer G { float gamma[]; };
layout(set = 0, binding = 5) readonly buffer B { float beta[]; };
layout(set = 0, binding = 6) writeonly buffer Y { float y[]; };
struct Params { uint n, C, inner, offX, offS, offRM, offRV, offG, offB, offY; float eps; };
PUSH_PARAMS(Params)

void main() {
    LOAD_PARAMS();
    FOR_EACH_ELEMENT(i, p.n) {
        uint ch = (i / p.inner) % p.C;
        float mean = EVAL ? runningMean[p.offRM + ch] : stats[p.offS + 2u * ch];
        float rstd = EVAL ? inversesqrt(runningVar[p.offRV + ch] + p.eps) : stats[p.offS + 2u * ch + 1u];
        float h = (x[p.offX + i] - mean) * rstd;
        if (AFFINE) h = h * gamma[p.offG + ch] + beta[p.offB + ch];
        y[p.offY + i] = h;
    }
}
