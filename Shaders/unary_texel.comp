#version 460
// Elementwise activation, x as a uniform texel buffer (body: unary.glsl).
#define TEXEL_X
#include "unary.glsl"
