// Body of softmax_backward.comp (y and dy as storage buffers) and its texel build (softmax_backward_texel)
// (TEXEL: both as uniform texel buffers of R32UI bits, which lavapipe reads by one call that
// gathers every lane's element instead of a loop over the lanes).
// dx = accumulate * dx + scale * y * (dy - sum(dy * y)), rows over the last axis.
#extension GL_EXT_samplerless_texture_functions : require  // texelFetch on textureBuffer (no sampler)
#include "rows.glsl"

#ifdef TEXEL
#pragma vkprobe_texel(0, r32ui)
#pragma vkprobe_texel(1, r32ui)
layout(set = 0, binding = 0) uniform utextureBuffer yTex;
layout(set = 0, binding = 1) uniform utextureBuffer dyTex;
float loadY(uint i) { return uintBitsToFloat(texelFetch(yTex, int(i)).x); }
float loadDY(uint i) { return uintBitsToFloat(texelFetch(dyTex, int(i)).x); }
#else
layout(set = 0, binding = 0) readonly buffer Y { float y[]; };
layout(set = 0, binding = 1) readonly buffer DY { float dy[]; };
float loadY(uint i) { return y[i]; }
float loadDY(uint i) { return dy[i]; }
#endif
layout(set = 0, binding = 2) buffer DX { float dx[]; };
struct Params { uint rows, cols, offY, sY, offDY, sDY, offDX, sDX; float scale; float accumulate; };
PUSH_PARAMS(Params)

void main() {
    LOAD_PARAMS();
    FOR_EACH_ROW(row, p.rows) {
        float d = 0.0;
        FOR_EACH_COL(c, p.cols) d += loadY(p.offY + row * p.sY + c) * loadDY(p.offDY + row * p.sDY + c);
        d = rowSum(d);
        FOR_EACH_COL(c, p.cols) {
            uint i = p.offDX + row * p.sDX + c;
            float g = p.scale * loadY(p.offY + row * p.sY + c) * (loadDY(p.offDY + row * p.sDY + c) - d);
            dx[i] = p.accumulate != 0.0 ? dx[i] + g : g;
        }
    }
}
