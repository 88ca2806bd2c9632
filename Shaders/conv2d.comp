#version 460
// Direct 2-D convolution, stride 1, zero padding PAD: x (B,Cin,H,W), w (Cout,Cin,KH,KW),
// y (B,Cout,Ho,Wo) with Ho = H + 2 PAD - KH + 1. Small kernels (1x1 goes through GEMM instead).
// MODE 0: forward y; 1: input gradient dx from dy; 2: weight gradient dw from dy and x.
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint MODE = 0;

layout(set = 0, binding = 0) readonly buffer A { float a[]; };   // x (MODE 0, 2) or dy (MODE 1)
layout(set = 0, binding = 1) readonly buffer Wt { float w[]; };  // w (MODE 0, 1) or dy (MODE 2)
layout(set = 0, binding = 2) buffer Out { float o[]; };
struct Params { uint B, Cin, H, W, Cout, KH, KW, PAD, offA, offW, offO; float accumulate; };
PUSH_PARAMS(Params)

void main() {
    LOAD_PARAMS();
    uint Ho = p.H + 2u * p.PAD - p.KH + 1u, Wo = p.W + 2u * p.PAD - p.KW + 1u;
    if (MODE == 0u) {
        FOR_EACH_ELEMENT(idx, p.B * p.Cout * Ho * Wo) {
            uint ox = idx % Wo, r = idx / Wo;
            uint oy = r % Ho; r /= Ho;
            uint co = r % p.Cout, b = r / p.Cout;
            float s = 0.0;
            for (uint ci = 0; ci < p.Cin; ++ci) for (uint ky = 0; ky < p.KH; ++ky) for (uint kx = 0; kx < p.KW; ++kx) {
                int iy = int(oy + ky) - int(p.PAD), ix = int(ox + kx) - int(p.PAD);
                if (iy < 0 || ix < 0 || iy >= int(p.H) || ix >= int(p.W)) continue;
                s += a[p.offA + ((b * p.Cin + ci) * p.H + uint(iy)) * p.W + uint(ix)] * w[p.offW + ((co * p.Cin + ci) * p.KH + ky) * p.KW + kx];
            }
            o[p.offO + idx] = p.accumulate != 0.0 ? o[p.offO + idx] + s : s;
        }
    } else if (MODE == 1u) {
        FOR_EACH_ELEMENT(idx, p.B * p.Cin * p.H * p.W) {
            uint ix = idx % p.W, r = idx / p.W;
            uint iy = r % p.H; r /= p.H;
            uint ci = r % p.Cin, b = r / p.Cin;
            float s = 0.0;
            for (uint co = 0; co < p.Cout; ++co) for (uint ky = 0; ky < p.KH; ++ky) for (uint kx = 0; kx < p.KW; ++kx) {
                int oy = int(iy + p.PAD) - int(ky), ox = int(ix + p.PAD) - int(kx);
                if (oy < 0 || ox < 0 || oy >= int(Ho) || ox >= int(Wo)) continue;
                s += a[p.offA + ((b * p.Cout + co) * Ho + uint(oy)) * Wo + uint(ox)] * w[p.offW + ((co * p.Cin + ci) * p.KH + ky) * p.KW + kx];
            }
            o[p.offO + idx] = p.accumulate != 0.0 ? o[p.offO + idx] + s : s;
        }
    } else {
        FOR_EACH_ELEMENT(idx, p.Cout * p.Cin * p.KH * p.KW) {
            uint kx = idx % p.KW, r = idx / p.KW;
            uint ky = r % p.KH; r /= p.KH;
            uint ci = r % p.Cin, co = r / p.Cin;
            float s = 0.0;
            for (uint b = 0; b < p.B; ++b) for (uint oy = 0; oy < Ho; ++oy) for (uint ox = 0; ox < Wo; ++ox) {
                int iy = int(oy + ky) - int(p.PAD), ix = int(ox + kx) - int(p.PAD);
                if (iy < 0 || ix < 0 || iy >= int(p.H) || ix >= int(p.W)) continue;
                s += a[p.offA + ((b * p.Cin + ci) * p.H + uint(iy)) * p.W + uint(ix)] * w[p.offW + ((b * p.Cout + co) * Ho + oy) * Wo + ox];
            }
            o[p.offO + idx] = p.accumulate != 0.0 ? o[p.offO + idx] + s : s;
        }
    }
}
