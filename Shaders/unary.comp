#version 460
// Elementwise activation, x as a storage buffer (body: unary.glsl).
#include "unary.glsl"
