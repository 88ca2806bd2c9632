#version 460
// Reduction over one axis, x as a uniform texel buffer (body: reduce_axis.glsl).
#define TEXEL_X
#include "reduce_axis.glsl"
