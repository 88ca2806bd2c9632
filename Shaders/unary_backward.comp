#version 460
// dx = accumulate * dx + dy * alpha * f'(alpha * x + beta)
#include "common.glsl"
#include "activations.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint OP = 0;   // an ACT_* code (codes.glsl)

// Four elements per load and store (n and every offset multiples of 4).
layout(constant_id = 2) const bool VEC4 = false;

layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) readonly buffer DY { float dy[]; };
layout(set = 0, binding = 2) buffer DX { float dx[]; };
layout(set = 0, binding = 0) readonly buffer X4 { vec4 x4[]; };
layout(set = 0, binding = 1) readonly buffer DY4 { vec4 dy4[]; };
layout(set = 0, binding = 2) buffer DX4 { vec4 dx4[]; };
struct Params { uint n; float alpha; float beta; uint offX; uint offDY; uint offDX; float accumulate; };
PUSH_PARAMS(Params)

void main() {
    LOAD_PARAMS();
    if (VEC4) {
        FOR_EACH_ELEMENT(gi, p.n / 4u) {
            vec4 v = p.alpha * x4[(p.offX >> 2) + gi] + p.beta;
            vec4 g = dy4[(p.offDY >> 2) + gi] * p.alpha
                * vec4(activate_grad(OP, v.x), activate_grad(OP, v.y), activate_grad(OP, v.z), activate_grad(OP, v.w));
            uint o = (p.offDX >> 2) + gi;
            dx4[o] = p.accumulate != 0.0 ? dx4[o] + g : g;
        }
        return;
    }
    FOR_EACH_ELEMENT(i, p.n) {
        float g = dy[p.offDY + i] * p.alpha * activate_grad(OP, p.alpha * x[p.offX + i] + p.beta);
        dx[p.offDX + i] = p.accumulate != 0.0 ? dx[p.offDX + i] + g : g;
    }
}
