#version 460
// dx = accumulate * dx + scale * y * (dy - sum(dy * y)), rows over the last axis.
#include "rows.glsl"

layout(set = 0, binding = 0) readonly buffer Y { float y[]; };
layout(set = 0, binding = 1) readonly buffer DY { float dy[]; };
layout(set = 0, binding = 2) buffer DX { float dx[]; };
struct Params { uint rows, cols, offY, sY, offDY, sDY, offDX, sDX; float scale; float accumulate; };
PUSH_PARAMS(Params)

void main() {
    LOAD_PARAMS();
    FOR_EACH_ROW(row, p.rows) {
        float d = 0.0;
        FOR_EACH_COL(c, p.cols) d += y[p.offY + row * p.sY + c] * dy[p.offDY + row * p.sDY + c];
        d = rowSum(d);
        FOR_EACH_COL(c, p.cols) {
            uint i = p.offDX + row * p.sDX + c;
            float g = p.scale * y[p.offY + row * p.sY + c] * (dy[p.offDY + row * p.sDY + c] - d);
            dx[i] = p.accumulate != 0.0 ? dx[i] + g : g;
        }
    }
}
