#version 460
// GPU-shaped GEMM: BM x BN output tile per workgroup, BK-deep slabs of A and B staged in shared
// memory, each invocation accumulating a TM x TN register block. Tile sizes are specialization
// constants (workgroup = (BM/TM) * (BN/TN) invocations).
#define SCALE_ID 8
#define RESIDUAL_ID 9
#include "gemm_common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 3) const uint BM = 64;
layout(constant_id = 4) const uint BN = 64;
layout(constant_id = 5) const uint BK = 16;
layout(constant_id = 6) const uint TM = 4;
layout(constant_id = 7) const uint TN = 4;

shared float tileA[BK * BM];
shared float tileB[BK * BN];

void main() {
    LOAD_PARAMS();
    uint batchIndex = gl_WorkGroupID.z;
    uint tileI = gl_WorkGroupID.y * BM, tileJ = gl_WorkGroupID.x * BN;
    uint threads = (BM / TM) * (BN / TN);
    uint t = gl_LocalInvocationID.x;
    uint ti = (t / (BN / TN)) * TM, tj = (t % (BN / TN)) * TN;
    uint baseA = batchBase(p.offA, batchIndex, p.sAb, p.sAh);
    uint baseB = batchBase(p.offB, batchIndex, p.sBb, p.sBh);
    float acc[TM][TN];
    [[unroll]] for (uint r = 0; r < TM; ++r) [[unroll]] for (uint c = 0; c < TN; ++c) acc[r][c] = 0.0;

    for (uint k0 = 0; k0 < p.K; k0 += BK) {
        for (uint e = t; e < BK * BM; e += threads) {
            uint kk = e / BM, ii = e % BM;
            uint gi = tileI + ii, gk = k0 + kk;
            tileA[e] = (gi < p.M && gk < p.K) ? loadA(baseA, gi, gk) : 0.0;
        }
        for (uint e = t; e < BK * BN; e += threads) {
            uint kk = e / BN, jj = e % BN;
            uint gj = tileJ + jj, gk = k0 + kk;
            tileB[e] = (gj < p.N && gk < p.K) ? loadB(baseB, gk, gj) : 0.0;
        }
        barrier();
        [[unroll]] for (uint kk = 0; kk < BK; ++kk) {
            float av[TM], bv[TN];
            [[unroll]] for (uint r = 0; r < TM; ++r) av[r] = tileA[kk * BM + ti + r];
            [[unroll]] for (uint c = 0; c < TN; ++c) bv[c] = tileB[kk * BN + tj + c];
            [[unroll]] for (uint r = 0; r < TM; ++r) [[unroll]] for (uint c = 0; c < TN; ++c) acc[r][c] = fma(av[r], bv[c], acc[r][c]);
        }
        barrier();
    }
    uint baseC = batchBase(p.offC, batchIndex, p.sCb, p.sCh);
    [[unroll]] for (uint r = 0; r < TM; ++r) {
        uint gi = tileI + ti + r;
        if (gi >= p.M) break;
        [[unroll]] for (uint c = 0; c < TN; ++c) {
            uint gj = tileJ + tj + c;
            if (gj < p.N) storeC(baseC, gi, gj, acc[r][c]);
        }
    }
}
