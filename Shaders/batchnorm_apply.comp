#version 460
// BatchNorm apply, x as a storage buffer (body: batchnorm_apply.glsl).
#include "batchnorm_apply.glsl"
