// Body of unary.comp (x as a storage buffer) and its texel build (unary_texel) (TEXEL).
// y = f(alpha * x + beta) elementwise; f from activations.glsl chosen by specialization constant.
#extension GL_EXT_samplerless_texture_functions : require  // texelFetch on textureBuffer (no sampler)
#include "common.glsl"
#include "activations.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint OP = 0;   // an ACT_* code (codes.glsl)

// Four elements per load and store (n and both offsets multiples of 4): lavapipe pays per memory
// instruction and lane.
layout(constant_id = 2) const bool VEC4 = false;

#ifdef TEXEL
// x as a uniform texel buffer of RGBA32UI (VEC4) or R32UI words: lavapipe fetches a texel through
// one call that gathers every lane's, where a storage-buffer load is a loop over the lanes.
#pragma vkprobe_texel(0, VEC4, rgba32ui, r32ui)
layout(set = 0, binding = 0) uniform utextureBuffer xTex;
float loadX(uint i) { return uintBitsToFloat(texelFetch(xTex, int(i)).x); }
vec4 loadX4(uint q) { return uintBitsToFloat(texelFetch(xTex, int(q))); }
#else
layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 0) readonly buffer X4 { vec4 x4[]; };
float loadX(uint i) { return x[i]; }
vec4 loadX4(uint q) { return x4[q]; }
#endif
layout(set = 0, binding = 1) writeonly buffer Y { float y[]; };
layout(set = 0, binding = 1) writeonly buffer Y4 { vec4 y4[]; };
struct Params { uint n; float alpha; float beta; uint offX; uint offY; };
PUSH_PARAMS(Params)

void main() {
    LOAD_PARAMS();
    if (VEC4) {
        FOR_EACH_ELEMENT(g, p.n / 4u) {
            vec4 v = p.alpha * loadX4((p.offX >> 2) + g) + p.beta;
            y4[(p.offY >> 2) + g] = vec4(activate(OP, v.x), activate(OP, v.y), activate(OP, v.z), activate(OP, v.w));
        }
        return;
    }
    FOR_EACH_ELEMENT(i, p.n) y[p.offY + i] = activate(OP, p.alpha * loadX(p.offX + i) + p.beta);
}
