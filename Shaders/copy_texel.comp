#version 460
// Strided copy, source as a uniform texel buffer (body: copy.glsl).
#define TEXEL_SRC
#include "copy.glsl"
