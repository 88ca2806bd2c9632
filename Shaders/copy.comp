#version 460
// Strided copy, source as a storage buffer (body: copy.glsl).
#include "copy.glsl"
