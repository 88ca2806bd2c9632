#version 460
// Stage 1 of a whole-tensor sum of squares of (x + c * y): each invocation writes the partial sum
// of its grid-stride elements (no shared memory, no barriers); reduce_axis sums the partials.
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const bool HAS_Y = false;

layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) readonly buffer Y { float y[]; };
layout(set = 0, binding = 2) writeonly buffer Part { float part[]; };
struct Params { uint n; uint offX; uint offY; uint offPart; float c; };
PUSH_PARAMS(Params)

void main() {
    LOAD_PARAMS();
    float acc = 0.0;
    FOR_EACH_ELEMENT(i, p.n) {
        float v = x[p.offX + i];
        if (HAS_Y) v += p.c * y[p.offY + i];
        acc += v * v;
    }
    part[p.offPart + gl_GlobalInvocationID.x] = acc;
}
