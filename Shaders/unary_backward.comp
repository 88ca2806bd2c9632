#version 460
// dx = accumulate * dx + dy * alpha * f'(alpha * x + beta)
#include "common.glsl"
#include "activations.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint OP = 0;   // an ACT_* code (codes.glsl)

layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) readonly buffer DY { float dy[]; };
layout(set = 0, binding = 2) buffer DX { float dx[]; };
layout(push_constant) uniform P { uint n; float alpha; float beta; uint offX; uint offDY; uint offDX; float accumulate; } p;

void main() {
    FOR_EACH_ELEMENT(i, p.n) {
        float g = dy[p.offDY + i] * p.alpha * activate_grad(OP, p.alpha * x[p.offX + i] + p.beta);
        dx[p.offDX + i] = p.accumulate != 0.0 ? dx[p.offDX + i] + g : g;
    }
}
