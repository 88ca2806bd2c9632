#version 460
// Softmax backward, y and dy as uniform texel buffers (body: softmax_backward.glsl).
#define TEXEL_IN
#include "softmax_backward.glsl"
