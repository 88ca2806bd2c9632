#version 460
// Broadcasting binary op, x and y as storage buffers (body: binary.glsl).
#include "binary.glsl"
