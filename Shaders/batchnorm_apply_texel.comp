#version 460
// BatchNorm apply, x as a uniform texel buffer of RGBA32UI words (body: batchnorm_apply.glsl).
#define TEXEL_X
#include "batchnorm_apply.glsl"
