#version 460
// y = (x - mean) * rstd * gamma + beta over the last axis; saves mean and rstd per row.
// RMS: RMSNorm, y = x * rstd * gamma with rstd = 1 / sqrt(mean(x²) + eps) (mean saved as 0, no beta).
#include "rows.glsl"
#ifdef OUT_F16
#define OUT_T float16_t
#define OUT_T4 f16vec4
#else
#define OUT_T float
#define OUT_T4 vec4
#endif
layout(constant_id = 1) const bool AFFINE = true;
// float4 loads and stores (cols and every offset and row stride multiples of 4): lavapipe pays per
// memory instruction and lane.
layout(constant_id = 2) const bool VEC4 = false;
layout(constant_id = 3) const bool RMS = false;

layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) readonly buffer G { float gamma[]; };
layout(set = 0, binding = 2) readonly buffer B { float beta[]; };
#ifdef OUT_F16
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
layout(set = 0, binding = 3) writeonly buffer Y { float16_t y[]; };   // f16 output (GEMM inputs of fp16 models)
#else
layout(set = 0, binding = 3) writeonly buffer Y { float y[]; };
#endif
layout(set = 0, binding = 4) writeonly buffer S { float stats[]; };   // (rows, 2): mean, rstd
layout(set = 0, binding = 0) readonly buffer X4 { vec4 x4[]; };
layout(set = 0, binding = 1) readonly buffer G4 { vec4 gamma4[]; };
layout(set = 0, binding = 2) readonly buffer B4 { vec4 beta4[]; };
layout(set = 0, binding = 3) writeonly buffer Y4 { OUT_T4 y4[]; };
struct Params { uint rows, cols, offX, sX, offG, offB, offY, sY, offS; float eps; };
PUSH_PARAMS(Params)

void main() {
    LOAD_PARAMS();
    if (VEC4) {
        uint q = p.cols / 4u;
        FOR_EACH_ROW(row, p.rows) {
            uint xr = (p.offX + row * p.sX) >> 2;
            float mean = 0.0;
            if (!RMS) {
                float s = 0.0;
                FOR_EACH_COL(c, q) { vec4 v = x4[xr + c]; s += (v.x + v.y) + (v.z + v.w); }
                mean = rowSum(s) / float(p.cols);
            }
            float v2 = 0.0;
            FOR_EACH_COL(c, q) { vec4 d = x4[xr + c] - mean; v2 += dot(d, d); }
            float rstd = inversesqrt(rowSum(v2) / float(p.cols) + p.eps);
            FOR_EACH_COL(c, q) {
                vec4 h = (x4[xr + c] - mean) * rstd;
                if (AFFINE) h = RMS ? h * gamma4[(p.offG >> 2) + c] : h * gamma4[(p.offG >> 2) + c] + beta4[(p.offB >> 2) + c];
                y4[((p.offY + row * p.sY) >> 2) + c] = OUT_T4(h);
            }
            if (gl_LocalInvocationID.x == 0u) { stats[p.offS + 2u * row] = mean; stats[p.offS + 2u * row + 1u] = rstd; }
        }
        return;
    }
    FOR_EACH_ROW(row, p.rows) {
        uint xr = p.offX + row * p.sX;
        float mean = 0.0;
        if (!RMS) {
            float s = 0.0;
            FOR_EACH_COL(c, p.cols) s += x[xr + c];
            mean = rowSum(s) / float(p.cols);
        }
        float v = 0.0;
        FOR_EACH_COL(c, p.cols) { float d = x[xr + c] - mean; v += d * d; }
        float rstd = inversesqrt(rowSum(v) / float(p.cols) + p.eps);
        FOR_EACH_COL(c, p.cols) {
            float h = (x[xr + c] - mean) * rstd;
            if (AFFINE) h = RMS ? h * gamma[p.offG + c] : h * gamma[p.offG + c] + beta[p.offB + c];
            y[p.offY + row * p.sY + c] = OUT_T(h);
        }
        if (gl_LocalInvocationID.x == 0u) { stats[p.offS + 2u * row] = mean; stats[p.offS + 2u * row + 1u] = rstd; }
    }
}
