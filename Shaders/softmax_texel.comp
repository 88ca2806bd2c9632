#version 460
// Softmax over rows, x as a uniform texel buffer (body: softmax.glsl).
#define TEXEL_X
#include "softmax.glsl"
