#version 460
// Gradient of a max over an axis: dx viewed as (outer, R, inner) gets dy[o, j] at r = argmax[o, j]
// and zero elsewhere.
#include "common.glsl"
layout(local_size_x_id = 0) in;

layout(set = 0, binding = 0) readonly buffer DY { float dy[]; };
layout(set = 0, binding = 1) readonly buffer A { int argmax[]; };
layout(set = 0, binding = 2) writeonly buffer DX { float dx[]; };
layout(push_constant) uniform P { uint outer, R, inner, offDY, offA, offDX; } p;

void main() {
    FOR_EACH_ELEMENT(i, p.outer * p.R * p.inner) {
        uint j = i % p.inner, r = (i / p.inner) % p.R, o = i / (p.inner * p.R);
        uint src = o * p.inner + j;
        dx[p.offDX + i] = uint(argmax[p.offA + src]) == r ? dy[p.offDY + src] : 0.0;
    }
}
