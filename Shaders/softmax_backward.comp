#version 460
// Softmax backward, y and dy as storage buffers (body: softmax_backward.glsl).
#include "softmax_backward.glsl"
