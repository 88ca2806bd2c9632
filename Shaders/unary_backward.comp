#version 460
// dx (+)= dy * alpha * f'(alpha * x + beta), x and dy as storage buffers (body: unary_backward.glsl).
#include "unary_backward.glsl"
