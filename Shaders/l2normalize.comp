#version 460
// Rows over the last axis: y = x / max(|x|, eps) (F.normalize), or its backward
// dx = (dy - y * sum(dy * y)) / |x| where |x| > eps, else dy / eps.
#include "rows.glsl"
layout(constant_id = 1) const bool BACKWARD = false;

layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) readonly buffer DY { float dy[]; };
layout(set = 0, binding = 2) writeonly buffer Out { float o[]; };
struct Params { uint rows, cols, offX, offDY, offO; float eps; };
PUSH_PARAMS(Params)

void main() {
    LOAD_PARAMS();
    FOR_EACH_ROW(row, p.rows) {
        uint base = row * p.cols;
        float s = 0.0;
        FOR_EACH_COL(c, p.cols) { float v = x[p.offX + base + c]; s += v * v; }
        float norm = sqrt(rowSum(s));
        if (!BACKWARD) {
            float inv = 1.0 / max(norm, p.eps);
            FOR_EACH_COL(c, p.cols) o[p.offO + base + c] = x[p.offX + base + c] * inv;
        } else {
            float d = 0.0;
            FOR_EACH_COL(c, p.cols) d += dy[p.offDY + base + c] * x[p.offX + base + c];
            d = rowSum(d);
            FOR_EACH_COL(c, p.cols) {
                float g = dy[p.offDY + base + c];
                o[p.offO + base + c] = norm > p.eps ? (g - x[p.offX + base + c] * d / (norm * norm)) / norm : g / p.eps;
            }
        }
    }
}
