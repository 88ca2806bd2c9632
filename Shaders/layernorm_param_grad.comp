#version 460
// dgamma[c] (+)= sum_rows dy * xhat, dbeta[c] (+)= sum_rows dy: one invocation per column.
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) readonly buffer S { float stats[]; };
layout(set = 0, binding = 2) readonly buffer DY { float dy[]; };
layout(set = 0, binding = 3) buffer DG { float dgamma[]; };
layout(set = 0, binding = 4) buffer DB { float dbeta[]; };
layout(push_constant) uniform P { uint rows, cols, offX, sX, offS, offDY, sDY, offDG, offDB; float accumulate; } p;

void main() {
    FOR_EACH_ELEMENT(c, p.cols) {
        float g = 0.0, b = 0.0;
        for (uint r = 0; r < p.rows; ++r) {
            float d = dy[p.offDY + r * p.sDY + c];
            g += d * (x[p.offX + r * p.sX + c] - stats[p.offS + 2u * r]) * stats[p.offS + 2u * r + 1u];
            b += d;
        }
        dgamma[p.offDG + c] = p.accumulate != 0.0 ? dgamma[p.offDG + c] + g : g;
        dbeta[p.offDB + c] = p.accumulate != 0.0 ? dbeta[p.offDB + c] + b : b;
    }
}
