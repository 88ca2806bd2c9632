#version 460
// Reduction over one axis, x as a storage buffer (body: reduce_axis.glsl).
#include "reduce_axis.glsl"
