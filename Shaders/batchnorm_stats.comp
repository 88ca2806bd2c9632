#version 460
// Per-channel batch statistics of x viewed as (outer, C, inner), contiguous: mean and
// rstd = 1/sqrt(biased var + eps) into stats (C, 2); optionally the running update
// running = (1 - momentum) running + momentum * (mean, unbiased var). One workgroup per channel.
#include "rows.glsl"
layout(constant_id = 1) const bool UPDATE_RUNNING = true;

layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) writeonly buffer S { float stats[]; };
layout(set = 0, binding = 2) buffer RM { float runningMean[]; };
layout(set = 0, binding = 3) buffer RV { float runningVar[]; };
layout(push_constant) uniform P { uint outer, C, inner, offX, offS, offRM, offRV; float eps; float momentum; } p;

void main() {
    uint n = p.outer * p.inner;
    FOR_EACH_ROW(ch, p.C) {
        float s = 0.0;
        FOR_EACH_COL(e, n) s += x[p.offX + (e / p.inner) * p.C * p.inner + ch * p.inner + e % p.inner];
        float mean = rowSum(s) / float(n);
        float v = 0.0;
        FOR_EACH_COL(e, n) { float d = x[p.offX + (e / p.inner) * p.C * p.inner + ch * p.inner + e % p.inner] - mean; v += d * d; }
        float var = rowSum(v) / float(n);
        if (gl_LocalInvocationID.x == 0u) {
            stats[p.offS + 2u * ch] = mean;
            stats[p.offS + 2u * ch + 1u] = inversesqrt(var + p.eps);
            if (UPDATE_RUNNING) {
                float unbiased = n > 1u ? var * float(n) / float(n - 1u) : var;
                runningMean[p.offRM + ch] = (1.0 - p.momentum) * runningMean[p.offRM + ch] + p.momentum * mean;
                runningVar[p.offRV + ch] = (1.0 - p.momentum) * runningVar[p.offRV + ch] + p.momentum * unbiased;
            }
        }
    }
}
