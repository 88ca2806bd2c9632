#version 460
// dx = accumulate * dx + rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * gamma.
#include "rows.glsl"
layout(constant_id = 1) const bool AFFINE = true;

layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) readonly buffer G { float gamma[]; };
layout(set = 0, binding = 2) readonly buffer S { float stats[]; };
layout(set = 0, binding = 3) readonly buffer DY { float dy[]; };
layout(set = 0, binding = 4) buffer DX { float dx[]; };
layout(push_constant) uniform P { uint rows, cols, offX, sX, offG, offS, offDY, sDY, offDX, sDX; float accumulate; } p;

void main() {
    FOR_EACH_ROW(row, p.rows) {
        float mean = stats[p.offS + 2u * row], rstd = stats[p.offS + 2u * row + 1u];
        uint xr = p.offX + row * p.sX, dr = p.offDY + row * p.sDY;
        float sg = 0.0, sgx = 0.0;
        FOR_EACH_COL(c, p.cols) {
            float g = dy[dr + c] * (AFFINE ? gamma[p.offG + c] : 1.0);
            sg += g; sgx += g * (x[xr + c] - mean) * rstd;
        }
        sg = rowSum(sg) / float(p.cols);
        sgx = rowSum(sgx) / float(p.cols);
        FOR_EACH_COL(c, p.cols) {
            float g = dy[dr + c] * (AFFINE ? gamma[p.offG + c] : 1.0);
            float v = rstd * (g - sg - (x[xr + c] - mean) * rstd * sgx);
            uint i = p.offDX + row * p.sDX + c;
            dx[i] = p.accumulate != 0.0 ? dx[i] + v : v;
        }
    }
}
