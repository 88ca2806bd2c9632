#version 460
// dgamma[c] (+)= sum_rows dy * xhat, dbeta[c] (+)= sum_rows dy: one invocation per column.
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) readonly buffer S { float stats[]; };
layout(set = 0, binding = 2) readonly buffer DY { float dy[]; };
layout(set = 0, binding = 3) buffer DG { float dgamma[]; };
layout(set = 0, binding = 4) buffer DB { float dbeta[]; };
// One invocation per four columns with float4 loads and stores (cols and every offset and row
// stride but the statistics' multiples of 4).
layout(constant_id = 1) const bool VEC4 = false;
layout(set = 0, binding = 0) readonly buffer X4 { vec4 x4[]; };
layout(set = 0, binding = 2) readonly buffer DY4 { vec4 dy4[]; };
layout(set = 0, binding = 3) buffer DG4 { vec4 dgamma4[]; };
layout(set = 0, binding = 4) buffer DB4 { vec4 dbeta4[]; };
struct Params { uint rows, cols, offX, sX, offS, offDY, sDY, offDG, offDB; float accumulate; };
PUSH_PARAMS(Params)

void main() {
    LOAD_PARAMS();
    if (VEC4) {
        FOR_EACH_ELEMENT(c, p.cols / 4u) {
            vec4 g = vec4(0.0), b = vec4(0.0);
            for (uint r = 0; r < p.rows; ++r) {
                vec4 d = dy4[((p.offDY + r * p.sDY) >> 2) + c];
                g += d * (x4[((p.offX + r * p.sX) >> 2) + c] - stats[p.offS + 2u * r]) * stats[p.offS + 2u * r + 1u];
                b += d;
            }
            uint ig = (p.offDG >> 2) + c, ib = (p.offDB >> 2) + c;
            dgamma4[ig] = p.accumulate != 0.0 ? dgamma4[ig] + g : g;
            dbeta4[ib] = p.accumulate != 0.0 ? dbeta4[ib] + b : b;
        }
        return;
    }
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
