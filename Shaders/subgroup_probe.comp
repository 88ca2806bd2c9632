#version 460
// What the running code was built for: each invocation writes a subgroup sum of ones and the span
// of the local indices in its subgroup; both equal the subgroup size the device reports when the
// code was built for this run. A CPU driver builds its vector width into the machine code while
// the shader's lowered form (what Mesa keys its cache by) names no size here — no gl_SubgroupSize,
// whose lowering to a constant would change the key — so code a cache holds from another width
// would be served and show (`ShaderCacheKey`).
#extension GL_KHR_shader_subgroup_arithmetic : require
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(set = 0, binding = 0) writeonly buffer Out { uint outv[]; };   // (invocations, 2)
struct Params { uint n; };
PUSH_PARAMS(Params)

void main() {
    LOAD_PARAMS();
    uint i = gl_GlobalInvocationID.x;
    uint sum = subgroupAdd(1u);
    uint span = subgroupMax(gl_LocalInvocationIndex) - subgroupMin(gl_LocalInvocationIndex) + 1u;
    if (i < p.n) { outv[2u * i] = sum; outv[2u * i + 1u] = span; }
}
