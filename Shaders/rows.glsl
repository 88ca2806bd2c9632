// Row kernels: a workgroup of TPR invocations walks rows (grid-stride); lane t takes columns
// t, t + TPR, ...; row reductions go through shared memory when TPR > 1 (TPR a power of two).
// With SUBGROUP_REDUCE (the `_sg` variants) the workgroup is exactly one subgroup and reductions
// are subgroup operations: no shared memory, no barriers (fastest on lavapipe).
#ifndef VKPROBE_ROWS_GLSL
#define VKPROBE_ROWS_GLSL
#include "common.glsl"

layout(local_size_x_id = 0) in;
#define TPR gl_WorkGroupSize.x

#ifdef SUBGROUP_REDUCE
#extension GL_KHR_shader_subgroup_arithmetic : require
float rowSum(float v) { return subgroupAdd(v); }
float rowMax(float v) { return subgroupMax(v); }
#else
shared float rowScratch[gl_WorkGroupSize.x];

// Tree reduction of one value per lane over the workgroup (sum, or max when TAKE_MAX).
float rowReduce(float v, bool TAKE_MAX) {
    if (TPR == 1u) return v;
    uint t = gl_LocalInvocationID.x;
    rowScratch[t] = v;
    barrier();
    for (uint s = TPR / 2u; s > 0u; s >>= 1) {
        if (t < s) rowScratch[t] = TAKE_MAX ? max(rowScratch[t], rowScratch[t + s]) : rowScratch[t] + rowScratch[t + s];
        barrier();
    }
    float r = rowScratch[0];
    barrier();
    return r;
}
float rowSum(float v) { return rowReduce(v, false); }
float rowMax(float v) { return rowReduce(v, true); }
#endif

#define FOR_EACH_ROW(row, rows) for (uint row = gl_WorkGroupID.x; row < (rows); row += gl_NumWorkGroups.x)
#define FOR_EACH_COL(col, cols) for (uint col = gl_LocalInvocationID.x; col < (cols); col += TPR)
#endif
