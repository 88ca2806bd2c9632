// Shared declarations for every kernel.
// Convention: set 0, storage buffers at bindings 0..n-1; workgroup size from specialization
// constant 0 (x) so one SPIR-V blob serves every device; kernel options from constants 1+.
#ifndef VKPROBE_COMMON_GLSL
#define VKPROBE_COMMON_GLSL

#extension GL_EXT_control_flow_attributes : enable

// Grid-stride loop over n elements for 1-D kernels dispatched with any workgroup count
// (keeps the count under maxComputeWorkGroupCount for large tensors).
#define FOR_EACH_ELEMENT(i, n) \
    for (uint i = gl_GlobalInvocationID.x; i < (n); i += gl_NumWorkGroups.x * gl_WorkGroupSize.x)

#endif
