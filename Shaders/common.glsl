// Shared declarations for every kernel.
// Convention: set 0, storage buffers at bindings 0..n-1; workgroup size from specialization
// constant 0 (x) so one SPIR-V blob serves every device; kernel options from constants 1+.
#ifndef VKPROBE_COMMON_GLSL
#define VKPROBE_COMMON_GLSL

#extension GL_EXT_control_flow_attributes : enable

// Push constants as the struct `p`, copied once at the start of main: declare the fields as
// `struct T { ... };`, then PUSH_PARAMS(T), and begin main with LOAD_PARAMS(). lavapipe reads a
// push constant through a per-lane gather where it is used, and again after every store (it cannot
// tell that stores leave the push block alone), so a loop that stores paid that per iteration (a
// GELU's loop: 27 gathers → 3, 2.22 → 1.88 ms).
#define PUSH_PARAMS(T) layout(push_constant) uniform T##Block { T pushed_; }; T p;
#define LOAD_PARAMS() p = pushed_

// Grid-stride loop over n elements for 1-D kernels dispatched with any workgroup count
// (keeps the count under maxComputeWorkGroupCount for large tensors).
#define FOR_EACH_ELEMENT(i, n) \
    for (uint i = gl_GlobalInvocationID.x; i < (n); i += gl_NumWorkGroups.x * gl_WorkGroupSize.x)

// r / d for r < 2^31 as a multiply-high by m = floor(2^(31+s) / d) + 1, s = ceil(log2 d), both
// computed by the host (FastDivisor.swift). CPU drivers scalarise integer division, which made
// index arithmetic the cost of strided copies and broadcasts on lavapipe.
uint fastDivide(uint r, uint m, uint s) {
    uint hi, lo;
    umulExtended(r, m, hi, lo);
    return s == 0u ? (hi << 1) | (lo >> 31) : hi >> (s - 1u);
}

// Component c (0–3) of t: a texel fetch returns four elements, kernels index single ones.
float component(vec4 t, uint c) { return c == 0u ? t.x : c == 1u ? t.y : c == 2u ? t.z : t.w; }

// bfloat16 is the high half of an f32: widening is a shift. Rounding (floatToBF16) is to nearest,
// ties to even, NaN to the quiet NaN 0x7FC0, as PyTorch's c10::BFloat16.
float bf16ToFloat(uint h) { return uintBitsToFloat(h << 16); }
vec4 bf16ToFloat4(uvec4 h) { return uintBitsToFloat(h << 16); }
uint floatToBF16(uint bits) {
    if ((bits & 0x7fffffffu) > 0x7f800000u) return 0x7fc0u;
    return (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
}

#endif
