#version 460
// Broadcasting binary op, x and y as uniform texel buffers (body: binary.glsl).
#define TEXEL_XY
#include "binary.glsl"
