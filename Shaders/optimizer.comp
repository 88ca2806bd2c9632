#version 460
// In-place optimiser steps on one parameter tensor.
// SGD:   d = g + wd p; m = momentum m + d (momentum > 0); p -= lr (momentum > 0 ? m : d)
// LARS (HEADS.md, upstream util/lars.py): for tensors with more than one dimension d = g + wd p,
//        scaled by trust * |p| / |d| when both norms are non-zero (norms[0] = |p|^2, norms[1] = |d|^2);
//        1-D tensors: d = g. Then m = momentum m + d; p -= lr m.
// AdamW: p *= 1 - lr wd; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
//        p -= lr (m / bc1) / (sqrt(v / bc2) + eps)
#include "common.glsl"
#include "codes.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint KIND = 0;   // an OPT_* code (codes.glsl)

layout(set = 0, binding = 0) buffer Param { float param[]; };
layout(set = 0, binding = 1) readonly buffer Grad { float grad[]; };
layout(set = 0, binding = 2) buffer M1 { float m1[]; };
layout(set = 0, binding = 3) buffer M2 { float m2[]; };
layout(set = 0, binding = 4) readonly buffer Norms { float norms[]; };
struct Params {
    uint n, offP, offG, offM1, offM2, offN;
    float lr, wd, momentum, trust;   // trust < 0: LARS exclusion (1-D tensor)
    float beta1, beta2, eps, bc1, bc2;
};
PUSH_PARAMS(Params)

void main() {
    LOAD_PARAMS();
    float ratio = 1.0;
    if (KIND == OPT_LARS && p.trust >= 0.0) {
        float pn = sqrt(norms[p.offN]), dn = sqrt(norms[p.offN + 1u]);
        ratio = (pn > 0.0 && dn > 0.0) ? p.trust * pn / dn : 1.0;
    }
    FOR_EACH_ELEMENT(i, p.n) {
        float w = param[p.offP + i], g = grad[p.offG + i];
        if (KIND == OPT_SGD) {
            float d = g + p.wd * w;
            if (p.momentum > 0.0) { float m = p.momentum * m1[p.offM1 + i] + d; m1[p.offM1 + i] = m; d = m; }
            param[p.offP + i] = w - p.lr * d;
        } else if (KIND == OPT_LARS) {
            float d = p.trust >= 0.0 ? (g + p.wd * w) * ratio : g;
            float m = p.momentum * m1[p.offM1 + i] + d;
            m1[p.offM1 + i] = m;
            param[p.offP + i] = w - p.lr * m;
        } else {
            w *= 1.0 - p.lr * p.wd;
            float m = p.beta1 * m1[p.offM1 + i] + (1.0 - p.beta1) * g;
            float v = p.beta2 * m2[p.offM2 + i] + (1.0 - p.beta2) * g * g;
            m1[p.offM1 + i] = m; m2[p.offM2 + i] = v;
            param[p.offP + i] = w - p.lr * (m / p.bc1) / (sqrt(v / p.bc2) + p.eps);
        }
    }
}
