#version 460
// y = f(alpha * x + beta) elementwise; f from activations.glsl chosen by specialization constant.
#include "common.glsl"
#include "activations.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint OP = 0;   // an ACT_* code (codes.glsl)

layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P { uint n; float alpha; float beta; uint offX; uint offY; } p;

void main() {
    FOR_EACH_ELEMENT(i, p.n) y[p.offY + i] = activate(OP, p.alpha * x[p.offX + i] + p.beta);
}
