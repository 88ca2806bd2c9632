#version 460
// Softmax over rows, x as a storage buffer (body: softmax.glsl).
#include "softmax.glsl"
