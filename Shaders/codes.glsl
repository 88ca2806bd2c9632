// Codes that Swift passes to kernels as specialization constants. Swift's enums (ProbeOps) must use
// the same values: ShaderInterfaceGenerator exports these as `ShaderConstants`, and a test checks
// both sides. Declare one per line as `const uint NAME = <n>u;`.
#ifndef VKPROBE_CODES_GLSL
#define VKPROBE_CODES_GLSL

// Activations (Activation): GEMM epilogues, unary and unary_backward.
const uint ACT_NONE = 0u;
const uint ACT_GELU = 1u;        // exact: x * Phi(x)
const uint ACT_QUICK_GELU = 2u;  // x * sigmoid(1.702 x)
const uint ACT_TANH_GELU = 3u;   // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
const uint ACT_RELU = 4u;
const uint ACT_SIGMOID = 5u;
const uint ACT_TANH = 6u;
const uint ACT_SOFTPLUS = 7u;
const uint ACT_SILU = 8u;        // x * sigmoid(x) (SwiGLU's gate)

// Binary operators (BinaryOp): binary.comp.
const uint OP_ADD = 0u;
const uint OP_SUBTRACT = 1u;
const uint OP_MULTIPLY = 2u;
const uint OP_DIVIDE = 3u;

// Reductions (ReduceOp.kernelCode): reduce_axis.comp.
const uint REDUCE_SUM = 0u;
const uint REDUCE_MAX = 1u;
const uint REDUCE_SUM_OF_SQUARES = 2u;

// Optimisers (OptimizerKernelKind): optimizer.comp.
const uint OPT_SGD = 0u;
const uint OPT_LARS = 1u;
const uint OPT_ADAMW = 2u;

#endif
