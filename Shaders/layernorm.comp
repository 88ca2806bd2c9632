#version 460
// y = (x - mean) * rstd * gamma + beta over the last axis; saves mean and rstd per row.
#include "rows.glsl"
#ifdef OUT_F16
#define OUT_T float16_t
#else
#define OUT_T float
#endif
layout(constant_id = 1) const bool AFFINE = true;

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
layout(push_constant) uniform P { uint rows, cols, offX, sX, offG, offB, offY, sY, offS; float eps; } p;

void main() {
    FOR_EACH_ROW(row, p.rows) {
        uint xr = p.offX + row * p.sX;
        float s = 0.0;
        FOR_EACH_COL(c, p.cols) s += x[xr + c];
        float mean = rowSum(s) / float(p.cols);
        float v = 0.0;
        FOR_EACH_COL(c, p.cols) { float d = x[xr + c] - mean; v += d * d; }
        float rstd = inversesqrt(rowSum(v) / float(p.cols) + p.eps);
        FOR_EACH_COL(c, p.cols) {
            float h = (x[xr + c] - mean) * rstd;
            if (AFFINE) h = h * gamma[p.offG + c] + beta[p.offB + c];
            y[p.offY + row * p.sY + c] = OUT_T(h);
        }
        if (gl_LocalInvocationID.x == 0u) { stats[p.offS + 2u * row] = mean; stats[p.offS + 2u * row + 1u] = rstd; }
    }
}
