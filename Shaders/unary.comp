#version 460
// y = f(alpha * x + beta) elementwise; f chosen by specialization constant OP.
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint OP = 0;   // 0 identity, 1 ReLU

layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P { uint n; float alpha; float beta; } p;

void main() {
    FOR_EACH_ELEMENT(i, p.n) {
        float v = p.alpha * x[i] + p.beta;
        if (OP == 1u) v = max(v, 0.0);
        y[i] = v;
    }
}
