#version 460
// dx (+)= dy * alpha * f'(alpha * x + beta), x and dy as uniform texel buffers (body: unary_backward.glsl).
#define TEXEL_IN
#include "unary_backward.glsl"
