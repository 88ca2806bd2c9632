// Row kernels: a workgroup of TPR invocations walks rows (grid-stride); lane t takes columns
// t, t + TPR, ...; row reductions go through shared memory when TPR > 1. TPR = 1 (lavapipe)
// compiles to plain loops with no shared memory or barriers. TPR must be a power of two.
#ifndef VKPROBE_ROWS_GLSL
#define VKPROBE_ROWS_GLSL
#include "common.glsl"

layout(local_size_x_id = 0) in;
#define TPR gl_WorkGroupSize.x

shared float rowScratch[gl_WorkGroupSize.x];

float rowSum(float v) {
    if (TPR == 1u) return v;
    uint t = gl_LocalInvocationID.x;
    rowScratch[t] = v;
    barrier();
    for (uint s = TPR / 2u; s > 0u; s >>= 1) {
        if (t < s) rowScratch[t] += rowScratch[t + s];
        barrier();
    }
    float r = rowScratch[0];
    barrier();
    return r;
}

float rowMax(float v) {
    if (TPR == 1u) return v;
    uint t = gl_LocalInvocationID.x;
    rowScratch[t] = v;
    barrier();
    for (uint s = TPR / 2u; s > 0u; s >>= 1) {
        if (t < s) rowScratch[t] = max(rowScratch[t], rowScratch[t + s]);
        barrier();
    }
    float r = rowScratch[0];
    barrier();
    return r;
}

#define FOR_EACH_ROW(row, rows) for (uint row = gl_WorkGroupID.x; row < (rows); row += gl_NumWorkGroups.x)
#define FOR_EACH_COL(col, cols) for (uint col = gl_LocalInvocationID.x; col < (cols); col += TPR)
#endif
