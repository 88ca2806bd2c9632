// Body of batchnorm_apply.comp (x as a storage buffer) and its texel build (batchnorm_apply_texel) (TEXEL: x
// as a uniform texel buffer of RGBA32UI words, fetched by a vector gather on lavapipe).
// y = (x - mean[c]) * rstd[c] * gamma[c] + beta[c], x viewed as (outer, C, inner) contiguous.
// Statistics from stats (C, 2) (training) or from the running buffers (EVAL).
#extension GL_EXT_samplerless_texture_functions : require  // texelFetch on textureBuffer (no sampler)
#include "common.glsl"
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const bool AFFINE = false;
layout(constant_id = 2) const bool EVAL = false;
// Channels last (inner 1), C and the offsets of x and y multiples of 4: invocation x owns four
// channels, loads their statistics and parameters once, and walks rows y, y + groups.y, ... with
// float4 loads and stores. lavapipe pays per load or store and lane, and the general path's two
// divisions per element are scalarised there (token BatchNorm of 196×768: 3.8 ms).
layout(constant_id = 3) const bool CHANNEL_QUADS = false;

#ifdef TEXEL
#pragma vkprobe_texel(0, rgba32ui)
layout(set = 0, binding = 0) uniform utextureBuffer texX;
vec4 X4(uint q) { return uintBitsToFloat(texelFetch(texX, int(q))); }
float X1(uint i) { return component(X4(i >> 2), i & 3u); }
#else
layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 0) readonly buffer XQ { vec4 x4[]; };
vec4 X4(uint q) { return x4[q]; }
float X1(uint i) { return x[i]; }
#endif
layout(set = 0, binding = 1) readonly buffer S { float stats[]; };
layout(set = 0, binding = 2) readonly buffer RM { float runningMean[]; };
layout(set = 0, binding = 3) readonly buffer RV { float runningVar[]; };
layout(set = 0, binding = 4) readonly buffer G { float gamma[]; };
layout(set = 0, binding = 5) readonly buffer B { float beta[]; };
layout(set = 0, binding = 6) writeonly buffer Y { float y[]; };
layout(set = 0, binding = 6) writeonly buffer YQ { vec4 y4[]; };
struct Params { uint n, C, inner, offX, offS, offRM, offRV, offG, offB, offY; float eps; };
PUSH_PARAMS(Params)

float channelMean(uint ch) { return EVAL ? runningMean[p.offRM + ch] : stats[p.offS + 2u * ch]; }
float channelRstd(uint ch) { return EVAL ? inversesqrt(runningVar[p.offRV + ch] + p.eps) : stats[p.offS + 2u * ch + 1u]; }

void main() {
    LOAD_PARAMS();
    if (CHANNEL_QUADS) {
        uint q = gl_GlobalInvocationID.x, quads = p.C / 4u;
        if (q >= quads) return;
        vec4 mean, rstd, g = vec4(1.0), b = vec4(0.0);
        [[unroll]] for (uint j = 0; j < 4; ++j) {
            mean[j] = channelMean(4u * q + j);
            rstd[j] = channelRstd(4u * q + j);
            if (AFFINE) { g[j] = gamma[p.offG + 4u * q + j]; b[j] = beta[p.offB + 4u * q + j]; }
        }
        uint rows = p.n / p.C;
        for (uint r = gl_WorkGroupID.y; r < rows; r += gl_NumWorkGroups.y) {
            vec4 h = (X4((p.offX >> 2) + r * quads + q) - mean) * rstd;
            if (AFFINE) h = h * g + b;
            y4[(p.offY >> 2) + r * quads + q] = h;
        }
        return;
    }
    FOR_EACH_ELEMENT(i, p.n) {
        uint ch = (i / p.inner) % p.C;
        float h = (X1(p.offX + i) - channelMean(ch)) * channelRstd(ch);
        if (AFFINE) h = h * gamma[p.offG + ch] + beta[p.offB + ch];
        y[p.offY + i] = h;
    }
}
