#version 460
// z = x (op) y with broadcasting over up to 4 axes: z contiguous with shape (d0, d1, d2, d3);
// x and y read through strides (0 on broadcast axes).
#include "common.glsl"
#include "codes.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint OP = 0;   // an OP_* code (codes.glsl)
// x and y dense in z's layout (no broadcasting): no index arithmetic (integer division is
// scalarised on CPU drivers, which made lavapipe's adds run at ~1 GB/s).
layout(constant_id = 2) const bool FLAT = false;

layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) readonly buffer Y { float y[]; };
layout(set = 0, binding = 2) writeonly buffer Z { float z[]; };
layout(push_constant) uniform P {
    uint n, d1, d2, d3;
    uint offX, offY, offZ;
    uint sx0, sx1, sx2, sx3;
    uint sy0, sy1, sy2, sy3;
    float alpha, beta;   // z = alpha * x (op) beta * y
    uint m1, m2, m3;     // fastDivide multipliers of d1, d2, d3
    uint shifts;         // their shifts, 5 bits each (d1 at bit 0)
} p;

void main() {
    if (FLAT) {
        FOR_EACH_ELEMENT(i, p.n) {
            float a = p.alpha * x[p.offX + i], b = p.beta * y[p.offY + i];
            z[p.offZ + i] = OP == OP_ADD ? a + b : OP == OP_SUBTRACT ? a - b : OP == OP_MULTIPLY ? a * b : a / b;
        }
        return;
    }
    FOR_EACH_ELEMENT(i, p.n) {
        uint r = fastDivide(i, p.m3, (p.shifts >> 10) & 31u), i3 = i - r * p.d3;
        uint q = fastDivide(r, p.m2, (p.shifts >> 5) & 31u), i2 = r - q * p.d2;
        uint i0 = fastDivide(q, p.m1, p.shifts & 31u), i1 = q - i0 * p.d1;
        float a = p.alpha * x[p.offX + i0 * p.sx0 + i1 * p.sx1 + i2 * p.sx2 + i3 * p.sx3];
        float b = p.beta * y[p.offY + i0 * p.sy0 + i1 * p.sy1 + i2 * p.sy2 + i3 * p.sy3];
        float v = OP == OP_ADD ? a + b : OP == OP_SUBTRACT ? a - b : OP == OP_MULTIPLY ? a * b : a / b;
        z[p.offZ + i] = v;
    }
}
