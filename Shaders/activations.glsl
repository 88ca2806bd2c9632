// Activation functions and their derivatives, shared by the GEMM epilogue and elementwise kernels.
#ifndef VKPROBE_ACTIVATIONS_GLSL
#define VKPROBE_ACTIVATIONS_GLSL

#include "codes.glsl"

// erf with |error| < 1.2e-7 (Numerical Recipes erfc, Chebyshev fit), enough for fp32 GELU.
float erf_approx(float x) {
    float z = abs(x);
    float t = 1.0 / (1.0 + 0.5 * z);
    float r = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
              t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
              t * (-0.82215223 + t * 0.17087277)))))))));
    return x >= 0.0 ? 1.0 - r : r - 1.0;
}

float sigmoid_f(float x) { return x >= 0.0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x)); }
float tanh_f(float x) { float e = exp(-2.0 * abs(x)); float t = (1.0 - e) / (1.0 + e); return x >= 0.0 ? t : -t; }
float softplus_f(float x) { return x > 20.0 ? x : log(1.0 + exp(x)); }  // PyTorch's threshold 20

const float SQRT_2_OVER_PI = 0.7978845608028654;
const float INV_SQRT_2 = 0.7071067811865476;
const float INV_SQRT_2PI = 0.3989422804014327;

float activate(uint act, float x) {
    if (act == ACT_GELU) return 0.5 * x * (1.0 + erf_approx(x * INV_SQRT_2));
    if (act == ACT_QUICK_GELU) return x * sigmoid_f(1.702 * x);
    if (act == ACT_TANH_GELU) return 0.5 * x * (1.0 + tanh_f(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
    if (act == ACT_RELU) return max(x, 0.0);
    if (act == ACT_SIGMOID) return sigmoid_f(x);
    if (act == ACT_TANH) return tanh_f(x);
    if (act == ACT_SOFTPLUS) return softplus_f(x);
    if (act == ACT_SILU) return x * sigmoid_f(x);
    return x;
}

// d activate(x) / dx
float activate_grad(uint act, float x) {
    if (act == ACT_GELU) return 0.5 * (1.0 + erf_approx(x * INV_SQRT_2)) + x * INV_SQRT_2PI * exp(-0.5 * x * x);
    if (act == ACT_QUICK_GELU) { float s = sigmoid_f(1.702 * x); return s + 1.702 * x * s * (1.0 - s); }
    if (act == ACT_TANH_GELU) {
        float u = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x);
        float t = tanh_f(u);
        return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * SQRT_2_OVER_PI * (1.0 + 3.0 * 0.044715 * x * x);
    }
    if (act == ACT_RELU) return x > 0.0 ? 1.0 : 0.0;
    if (act == ACT_SIGMOID) { float s = sigmoid_f(x); return s * (1.0 - s); }
    if (act == ACT_TANH) { float t = tanh_f(x); return 1.0 - t * t; }
    if (act == ACT_SOFTPLUS) return x > 20.0 ? 1.0 : sigmoid_f(x);
    if (act == ACT_SILU) { float s = sigmoid_f(x); return s + x * s * (1.0 - s); }
    return 1.0;
}
#endif
