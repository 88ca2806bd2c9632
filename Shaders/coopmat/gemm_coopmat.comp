#version 460
// GEMM on cooperative matrices (VK_KHR_cooperative_matrix): f16 A and B, f32 accumulation, the
// epilogue of gemm_common.glsl. Four subgroups per workgroup in a 2×2 grid, each computing a
// 32×32 block as 2×2 16×16×16 matrices, so a workgroup covers a 64×64 tile of C; BK-deep slabs of
// A and B are staged in shared memory as f16 (any strides, zero past the edges), and the
// accumulators go through shared memory to the element-wise epilogue (bias, activation, scale,
// residual, bounds). Compiled with glslangValidator 13.1.1 (Debian's glslc predates the extension).
#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_GOOGLE_include_directive : require
#define SCALE_ID 3
#define RESIDUAL_ID 4
#include "gemm_common.glsl"

// 4 × the device's subgroup size (set from Swift).
layout(local_size_x_id = 0) in;

const uint BM = 64, BN = 64, BK = 32, T = 16;
shared float16_t tileA[BM * BK];   // row-major BM × BK
shared float16_t tileB[BK * BN];   // row-major BK × BN
shared float tileC[BM * BN];

void main() {
    LOAD_PARAMS();
    uint batchIndex = gl_WorkGroupID.z;
    uint tileI = gl_WorkGroupID.y * BM, tileJ = gl_WorkGroupID.x * BN;
    uint threads = gl_WorkGroupSize.x;
    uint t = gl_LocalInvocationID.x;
    uint warp = gl_SubgroupID;
    uint wi = (warp / 2u) * 32u, wj = (warp % 2u) * 32u;
    uint baseA = batchBase(p.offA, batchIndex, p.sAb, p.sAh);
    uint baseB = batchBase(p.offB, batchIndex, p.sBb, p.sBh);

    coopmat<float, gl_ScopeSubgroup, T, T, gl_MatrixUseAccumulator> acc[2][2];
    [[unroll]] for (uint r = 0; r < 2; ++r) [[unroll]] for (uint c = 0; c < 2; ++c)
        acc[r][c] = coopmat<float, gl_ScopeSubgroup, T, T, gl_MatrixUseAccumulator>(0.0);

    for (uint k0 = 0; k0 < p.K; k0 += BK) {
        for (uint e = t; e < BM * BK; e += threads) {
            uint ii = e / BK, kk = e % BK;
            uint gi = tileI + ii, gk = k0 + kk;
            tileA[e] = float16_t((gi < p.M && gk < p.K) ? loadA(baseA, gi, gk) : 0.0);
        }
        for (uint e = t; e < BK * BN; e += threads) {
            uint kk = e / BN, jj = e % BN;
            uint gj = tileJ + jj, gk = k0 + kk;
            tileB[e] = float16_t((gj < p.N && gk < p.K) ? loadB(baseB, gk, gj) : 0.0);
        }
        barrier();
        [[unroll]] for (uint kk = 0; kk < BK; kk += T) {
            coopmat<float16_t, gl_ScopeSubgroup, T, T, gl_MatrixUseA> a[2];
            coopmat<float16_t, gl_ScopeSubgroup, T, T, gl_MatrixUseB> b[2];
            [[unroll]] for (uint r = 0; r < 2; ++r)
                coopMatLoad(a[r], tileA, (wi + r * T) * BK + kk, BK, gl_CooperativeMatrixLayoutRowMajor);
            [[unroll]] for (uint c = 0; c < 2; ++c)
                coopMatLoad(b[c], tileB, kk * BN + wj + c * T, BN, gl_CooperativeMatrixLayoutRowMajor);
            [[unroll]] for (uint r = 0; r < 2; ++r) [[unroll]] for (uint c = 0; c < 2; ++c)
                acc[r][c] = coopMatMulAdd(a[r], b[c], acc[r][c]);
        }
        barrier();
    }
    [[unroll]] for (uint r = 0; r < 2; ++r) [[unroll]] for (uint c = 0; c < 2; ++c)
        coopMatStore(acc[r][c], tileC, (wi + r * T) * BN + wj + c * T, BN, gl_CooperativeMatrixLayoutRowMajor);
    barrier();
    uint baseC = batchBase(p.offC, batchIndex, p.sCb, p.sCh);
    for (uint e = t; e < BM * BN; e += threads) {
        uint gi = tileI + e / BN, gj = tileJ + e % BN;
        if (gi < p.M && gj < p.N) storeC(baseC, gi, gj, tileC[e]);
    }
}
