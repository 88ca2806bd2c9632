#version 460
// dx = accumulate * dx + rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * gamma.
#include "rows.glsl"
layout(constant_id = 1) const bool AFFINE = true;
// float4 loads and stores (cols and every offset and row stride multiples of 4).
layout(constant_id = 2) const bool VEC4 = false;

layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) readonly buffer G { float gamma[]; };
layout(set = 0, binding = 2) readonly buffer S { float stats[]; };
layout(set = 0, binding = 3) readonly buffer DY { float dy[]; };
layout(set = 0, binding = 4) buffer DX { float dx[]; };
layout(set = 0, binding = 0) readonly buffer X4 { vec4 x4[]; };
layout(set = 0, binding = 1) readonly buffer G4 { vec4 gamma4[]; };
layout(set = 0, binding = 3) readonly buffer DY4 { vec4 dy4[]; };
layout(set = 0, binding = 4) buffer DX4 { vec4 dx4[]; };
struct Params { uint rows, cols, offX, sX, offG, offS, offDY, sDY, offDX, sDX; float accumulate; };
PUSH_PARAMS(Params)

void main() {
    LOAD_PARAMS();
    if (VEC4) {
        uint q = p.cols / 4u;
        FOR_EACH_ROW(row, p.rows) {
            float mean = stats[p.offS + 2u * row], rstd = stats[p.offS + 2u * row + 1u];
            uint xr = (p.offX + row * p.sX) >> 2, dr = (p.offDY + row * p.sDY) >> 2;
            float sg = 0.0, sgx = 0.0;
            FOR_EACH_COL(c, q) {
                vec4 g = dy4[dr + c] * (AFFINE ? gamma4[(p.offG >> 2) + c] : vec4(1.0));
                sg += (g.x + g.y) + (g.z + g.w); sgx += dot(g, (x4[xr + c] - mean) * rstd);
            }
            sg = rowSum(sg) / float(p.cols);
            sgx = rowSum(sgx) / float(p.cols);
            FOR_EACH_COL(c, q) {
                vec4 g = dy4[dr + c] * (AFFINE ? gamma4[(p.offG >> 2) + c] : vec4(1.0));
                vec4 v = rstd * (g - sg - (x4[xr + c] - mean) * rstd * sgx);
                uint i = ((p.offDX + row * p.sDX) >> 2) + c;
                dx4[i] = p.accumulate != 0.0 ? dx4[i] + v : v;
            }
        }
        return;
    }
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
