// Body of unary_backward.comp (x and dy as storage buffers) and its texel build (unary_backward_texel)
// (TEXEL: both as uniform texel buffers, which lavapipe gathers in one call per fetch where a
// storage-buffer load is a loop over the lanes).
// dx = (ACCUMULATE ? dx : 0) + dy * alpha * f'(alpha * x + beta)
#extension GL_EXT_samplerless_texture_functions : require  // texelFetch on textureBuffer (no sampler)
#include "common.glsl"
#include "activations.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint OP = 0;   // an ACT_* code (codes.glsl)

// Four elements per load and store (n and every offset multiples of 4).
layout(constant_id = 2) const bool VEC4 = false;
// Add onto dx. A specialization constant, so that the plain case never loads dx.
layout(constant_id = 3) const bool ACCUMULATE = false;

#ifdef TEXEL
// RGBA32UI texels (VEC4) or R32UI words.
#pragma vkprobe_texel(0, VEC4, rgba32ui, r32ui)
#pragma vkprobe_texel(1, VEC4, rgba32ui, r32ui)
layout(set = 0, binding = 0) uniform utextureBuffer xTex;
layout(set = 0, binding = 1) uniform utextureBuffer dyTex;
float loadX(uint i) { return uintBitsToFloat(texelFetch(xTex, int(i)).x); }
vec4 loadX4(uint q) { return uintBitsToFloat(texelFetch(xTex, int(q))); }
float loadDY(uint i) { return uintBitsToFloat(texelFetch(dyTex, int(i)).x); }
vec4 loadDY4(uint q) { return uintBitsToFloat(texelFetch(dyTex, int(q))); }
#else
layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) readonly buffer DY { float dy[]; };
layout(set = 0, binding = 0) readonly buffer X4 { vec4 x4[]; };
layout(set = 0, binding = 1) readonly buffer DY4 { vec4 dy4[]; };
float loadX(uint i) { return x[i]; }
vec4 loadX4(uint q) { return x4[q]; }
float loadDY(uint i) { return dy[i]; }
vec4 loadDY4(uint q) { return dy4[q]; }
#endif
layout(set = 0, binding = 2) buffer DX { float dx[]; };
layout(set = 0, binding = 2) buffer DX4 { vec4 dx4[]; };
struct Params { uint n; float alpha; float beta; uint offX; uint offDY; uint offDX; };
PUSH_PARAMS(Params)

void main() {
    LOAD_PARAMS();
    if (VEC4) {
        FOR_EACH_ELEMENT(gi, p.n / 4u) {
            vec4 v = p.alpha * loadX4((p.offX >> 2) + gi) + p.beta;
            vec4 g = loadDY4((p.offDY >> 2) + gi) * p.alpha
                * vec4(activate_grad(OP, v.x), activate_grad(OP, v.y), activate_grad(OP, v.z), activate_grad(OP, v.w));
            uint o = (p.offDX >> 2) + gi;
            dx4[o] = ACCUMULATE ? dx4[o] + g : g;
        }
        return;
    }
    FOR_EACH_ELEMENT(i, p.n) {
        float g = loadDY(p.offDY + i) * p.alpha * activate_grad(OP, p.alpha * loadX(p.offX + i) + p.beta);
        dx[p.offDX + i] = ACCUMULATE ? dx[p.offDX + i] + g : g;
    }
}
