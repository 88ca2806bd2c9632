#version 460
// Gradient of a max over an axis: dx viewed as (outer, R, inner) gets dy[o, j] at r = argmax[o, j]
// and zero elsewhere. Operands are strided with a contiguous inner axis; this piece starts at
// rOffset along the reduced axis (argmax values are indices along the whole axis).
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(set = 0, binding = 0) readonly buffer DY { float dy[]; };
layout(set = 0, binding = 1) readonly buffer A { int argmax[]; };
layout(set = 0, binding = 2) writeonly buffer DX { float dx[]; };
struct Params { uint outer, R, inner, offDY, sDY, offA, sA, offDX, sDXo, sDXr, rOffset; };
PUSH_PARAMS(Params)

void main() {
    LOAD_PARAMS();
    FOR_EACH_ELEMENT(i, p.outer * p.R * p.inner) {
        uint j = i % p.inner, r = (i / p.inner) % p.R, o = i / (p.inner * p.R);
        bool hit = uint(argmax[p.offA + o * p.sA + j]) == r + p.rOffset;
        dx[p.offDX + o * p.sDXo + r * p.sDXr + j] = hit ? dy[p.offDY + o * p.sDY + j] : 0.0;
    }
}
