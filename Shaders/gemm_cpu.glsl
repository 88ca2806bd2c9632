// CPU-shaped GEMM for lavapipe (the body of gemm_cpu.comp and its texel build (gemm_cpu_texel)): no shared
// memory, no barriers. lavapipe runs the invocations of a workgroup as SIMD lanes, and every load
// costs per lane, so each lane owns ROWS rows and the whole workgroup shares COLS columns: a K step
// loads ROWS + COLS values (float4s where the layout allows) for ROWS × COLS multiply-adds.
#define SCALE_ID 7
#define RESIDUAL_ID 8
#define VEC4_BN_ID 9
#include "gemm_common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 3) const uint ROWS = 2;
layout(constant_id = 4) const uint COLS = 16;
// A and B both contiguous along K, K and every offset/row stride a multiple of 4 (the Linear case):
// load float4s along K — one gather per lane and one uniform load per column for four K steps.
layout(constant_id = 5) const bool VEC4_K = false;
// Only A contiguous along K (B strided, e.g. A·X or dY·W): float4 gathers of A, scalar uniform B.
layout(constant_id = 6) const bool VEC4_A = false;
// B contiguous along N (row-major K×N, e.g. the aggregation A·X), N, COLS and every B offset and
// stride multiples of 4: the workgroup's COLS columns of a K step are COLS/4 uniform float4 loads
// (a whole float4 lies either inside N or past it). With VEC4_A, A is read as float4 along K too.
layout(constant_id = VEC4_BN_ID) const bool VEC4_BN = false;
// The dispatch computes Cᵀ = Bᵀ·Aᵀ (operands and M/N swapped by the host) and stores element
// (i, j) of that product at C(j, i), so bias and scale still index C's columns. Used when C has
// few rows: lanes then run along C's columns instead of idling on clamped duplicate rows.
layout(constant_id = 10) const bool SWAP_C = false;
// A contiguous along M (a transposed operand, e.g. dW = dYᵀ·X, or Xᵀ in the transposed form of
// an aggregation A·X), M, ROWS and every A offset and K stride multiples of 4: each lane's rows are
// ROWS/4 float4 gathers per K step (with VEC4_BN, or B read one element at a time).
layout(constant_id = 11) const bool VEC4_AM = false;
// Store C four elements at a time along its rows: a lane's COLS columns (direct form; COLS and N
// multiples of 4) or, with SWAP_C, its ROWS rows of Cᵀ, consecutive in a row of C (ROWS and M
// multiples of 4); C's offsets and row stride and the bias/scale offsets multiples of 4.
layout(constant_id = 12) const bool STORE4 = false;
// With VEC4_BN and a float4 path for A, or with VEC4_BK: K four steps at a time (see main).
layout(constant_id = 13) const bool UNROLL_K4 = true;
// B contiguous along K (its column offsets and stride multiples of 4), A not (the transposed form
// of an aggregation A·X, or dW with A along M): a column's four K steps are one uniform float4.
layout(constant_id = 14) const bool VEC4_BK = false;
// On the float4-along-K path, K_TEXELS texels of each row and column per accumulator visit (K
// steps 4·K_TEXELS at a time, then one texel at a time): lavapipe keeps the accumulators in memory
// (its texel fetches are calls), so each visit costs a load, a masked blend and a store besides
// its multiply-adds; two texels halve that (ViT-B/16's Linears 58 → 75 GFLOP/s).
layout(constant_id = 15) const uint K_TEXELS = 1;

// A's ROWS values of this lane at step k: float4 gathers along M (VEC4_AM; rows past M read the
// last quad, computed but never stored) or one element per row.
void loadRowsA(uint baseA, uint i0, uint rowA[ROWS], uint k, out float av[ROWS]) {
    if (VEC4_AM) {
        uint at = (baseA >> 2) + k * (p.sAk >> 2), lastQuad = p.M / 4u - 1u;
        [[unroll]] for (uint q = 0; q < ROWS / 4; ++q) {
            vec4 v = A4(at + min(i0 / 4u + q, lastQuad));
            av[4 * q] = v.x; av[4 * q + 1] = v.y; av[4 * q + 2] = v.z; av[4 * q + 3] = v.w;
        }
    } else {
        [[unroll]] for (uint r = 0; r < ROWS; ++r) av[r] = A1(rowA[r] + k * p.sAk);
    }
}

void main() {
    LOAD_PARAMS();
    uint batchIndex = gl_WorkGroupID.z;
    uint j0 = gl_WorkGroupID.x * COLS;
    uint i0 = (gl_WorkGroupID.y * gl_WorkGroupSize.x + gl_LocalInvocationID.x) * ROWS;
    uint baseA = batchBase(p.offA, batchIndex, p.sAb, p.sAh);
    uint baseB = batchBase(p.offB, batchIndex, p.sBb, p.sBh);
    float acc[ROWS][COLS];
    uint rowA[ROWS];
    uint colB[COLS];
    [[unroll]] for (uint r = 0; r < ROWS; ++r) {
        rowA[r] = baseA + min(i0 + r, p.M - 1) * p.sAi;
        [[unroll]] for (uint c = 0; c < COLS; ++c) acc[r][c] = 0.0;
    }
    [[unroll]] for (uint c = 0; c < COLS; ++c) colB[c] = baseB + min(j0 + c, p.N - 1) * p.sBn;
    if (VEC4_BN) {
        // Column quads: the float4 index of columns j0 + 4q .. + 3 in row 0 (clamped past N).
        uint quad[COLS / 4];
        [[unroll]] for (uint q = 0; q < COLS / 4; ++q) quad[q] = (baseB >> 2) + min(j0 / 4u + q, p.N / 4u - 1u);
        uint rowStride4 = p.sBk >> 2;
        uint k = 0;
        // Four K steps at a time where A has a float4 path: A's values for the four steps first,
        // then per column quad its four B float4s, so that each accumulator takes four FMAs
        // between a load and a store (lavapipe keeps them in memory; its texel fetches are
        // calls). As fast as the float4-along-K path, without transposing A or B first.
        if (UNROLL_K4 && (VEC4_A || VEC4_AM)) {
            uint rowA4[ROWS];
            [[unroll]] for (uint r = 0; r < ROWS; ++r) rowA4[r] = rowA[r] >> 2;
            for (; k + 4u <= p.K; k += 4u) {
                float av[4][ROWS];
                if (VEC4_A) {
                    [[unroll]] for (uint r = 0; r < ROWS; ++r) {
                        vec4 v = A4(rowA4[r] + k / 4u);
                        av[0][r] = v.x; av[1][r] = v.y; av[2][r] = v.z; av[3][r] = v.w;
                    }
                } else {
                    [[unroll]] for (uint kk = 0; kk < 4; ++kk) loadRowsA(baseA, i0, rowA, k + kk, av[kk]);
                }
                [[unroll]] for (uint q = 0; q < COLS / 4; ++q) {
                    vec4 b0 = B4(quad[q] + k * rowStride4), b1 = B4(quad[q] + (k + 1u) * rowStride4);
                    vec4 b2 = B4(quad[q] + (k + 2u) * rowStride4), b3 = B4(quad[q] + (k + 3u) * rowStride4);
                    [[unroll]] for (uint r = 0; r < ROWS; ++r) {
                        [[unroll]] for (uint j = 0; j < 4; ++j) {
                            float t = acc[r][4 * q + j];
                            t = fma(av[0][r], b0[j], t);
                            t = fma(av[1][r], b1[j], t);
                            t = fma(av[2][r], b2[j], t);
                            t = fma(av[3][r], b3[j], t);
                            acc[r][4 * q + j] = t;
                        }
                    }
                }
            }
        }
        for (; k < p.K; ++k) {
            float av[ROWS];
            loadRowsA(baseA, i0, rowA, k, av);
            uint row = k * rowStride4;
            [[unroll]] for (uint q = 0; q < COLS / 4; ++q) {
                vec4 bv = B4(quad[q] + row);
                [[unroll]] for (uint r = 0; r < ROWS; ++r) {
                    acc[r][4 * q] = fma(av[r], bv.x, acc[r][4 * q]);
                    acc[r][4 * q + 1] = fma(av[r], bv.y, acc[r][4 * q + 1]);
                    acc[r][4 * q + 2] = fma(av[r], bv.z, acc[r][4 * q + 2]);
                    acc[r][4 * q + 3] = fma(av[r], bv.w, acc[r][4 * q + 3]);
                }
            }
        }
    } else if (VEC4_K) {
        [[unroll]] for (uint r = 0; r < ROWS; ++r) rowA[r] >>= 2;
        [[unroll]] for (uint c = 0; c < COLS; ++c) colB[c] >>= 2;
        uint k4 = 0;
        if (K_TEXELS > 1) {
            for (; k4 + K_TEXELS <= p.K / 4; k4 += K_TEXELS) {
                vec4 av[ROWS][K_TEXELS];
                [[unroll]] for (uint r = 0; r < ROWS; ++r)
                    [[unroll]] for (uint t = 0; t < K_TEXELS; ++t) av[r][t] = A4(rowA[r] + k4 + t);
                [[unroll]] for (uint c = 0; c < COLS; ++c) {
                    vec4 bv[K_TEXELS];
                    [[unroll]] for (uint t = 0; t < K_TEXELS; ++t) bv[t] = B4(colB[c] + k4 + t);
                    [[unroll]] for (uint r = 0; r < ROWS; ++r) {
                        float s = acc[r][c];
                        [[unroll]] for (uint t = 0; t < K_TEXELS; ++t) {
                            s = fma(av[r][t].x, bv[t].x, s);
                            s = fma(av[r][t].y, bv[t].y, s);
                            s = fma(av[r][t].z, bv[t].z, s);
                            s = fma(av[r][t].w, bv[t].w, s);
                        }
                        acc[r][c] = s;
                    }
                }
            }
        }
        for (; k4 < p.K / 4; ++k4) {
            vec4 av[ROWS];
            [[unroll]] for (uint r = 0; r < ROWS; ++r) av[r] = A4(rowA[r] + k4);
            [[unroll]] for (uint c = 0; c < COLS; ++c) {
                vec4 bv = B4(colB[c] + k4);
                [[unroll]] for (uint r = 0; r < ROWS; ++r) {
                    acc[r][c] = fma(av[r].x, bv.x, acc[r][c]);
                    acc[r][c] = fma(av[r].y, bv.y, acc[r][c]);
                    acc[r][c] = fma(av[r].z, bv.z, acc[r][c]);
                    acc[r][c] = fma(av[r].w, bv.w, acc[r][c]);
                }
            }
        }
    } else if (VEC4_A) {
        uint rowA4[ROWS];
        [[unroll]] for (uint r = 0; r < ROWS; ++r) rowA4[r] = rowA[r] >> 2;
        for (uint k4 = 0; k4 < p.K / 4; ++k4) {
            vec4 av[ROWS];
            [[unroll]] for (uint r = 0; r < ROWS; ++r) av[r] = A4(rowA4[r] + k4);
            uint k = k4 * 4;
            [[unroll]] for (uint c = 0; c < COLS; ++c) {
                uint bi = colB[c] + k * p.sBk;
                float b0 = B1(bi), b1 = B1(bi + p.sBk), b2 = B1(bi + 2u * p.sBk), b3 = B1(bi + 3u * p.sBk);
                [[unroll]] for (uint r = 0; r < ROWS; ++r) {
                    acc[r][c] = fma(av[r].x, b0, acc[r][c]);
                    acc[r][c] = fma(av[r].y, b1, acc[r][c]);
                    acc[r][c] = fma(av[r].z, b2, acc[r][c]);
                    acc[r][c] = fma(av[r].w, b3, acc[r][c]);
                }
            }
        }
    } else {
        uint k = 0;
        // B along K: four K steps per column texel, A's values for the four steps first, four
        // FMAs per accumulator visit (as the float4-along-K path).
        if (UNROLL_K4 && VEC4_BK) {
            uint colB4[COLS];
            [[unroll]] for (uint c = 0; c < COLS; ++c) colB4[c] = colB[c] >> 2;
            for (; k + 4u <= p.K; k += 4u) {
                float av[4][ROWS];
                [[unroll]] for (uint kk = 0; kk < 4; ++kk) loadRowsA(baseA, i0, rowA, k + kk, av[kk]);
                [[unroll]] for (uint c = 0; c < COLS; ++c) {
                    vec4 bv = B4(colB4[c] + k / 4u);
                    [[unroll]] for (uint r = 0; r < ROWS; ++r) {
                        float t = acc[r][c];
                        t = fma(av[0][r], bv.x, t);
                        t = fma(av[1][r], bv.y, t);
                        t = fma(av[2][r], bv.z, t);
                        t = fma(av[3][r], bv.w, t);
                        acc[r][c] = t;
                    }
                }
            }
        }
        for (; k < p.K; ++k) {
            float av[ROWS];
            loadRowsA(baseA, i0, rowA, k, av);
            [[unroll]] for (uint c = 0; c < COLS; ++c) {
                float bv = B1(colB[c] + k * p.sBk);
                [[unroll]] for (uint r = 0; r < ROWS; ++r) acc[r][c] = fma(av[r], bv, acc[r][c]);
            }
        }
    }
    uint baseC = batchBase(p.offC, batchIndex, p.sCb, p.sCh);
    if (STORE4 && !SWAP_C) {
        [[unroll]] for (uint r = 0; r < ROWS; ++r) {
            if (i0 + r >= p.M) break;
            [[unroll]] for (uint q = 0; q < COLS / 4; ++q) {
                uint j = j0 + 4u * q;
                if (j < p.N) storeC4(baseC + (i0 + r) * p.sCi + j, j,
                                     vec4(acc[r][4 * q], acc[r][4 * q + 1], acc[r][4 * q + 2], acc[r][4 * q + 3]));
            }
        }
        return;
    }
    if (STORE4 && SWAP_C) {
        [[unroll]] for (uint c = 0; c < COLS; ++c) {
            if (j0 + c >= p.N) break;
            [[unroll]] for (uint q = 0; q < ROWS / 4; ++q) {
                uint i = i0 + 4u * q;
                if (i < p.M) storeC4(baseC + (j0 + c) * p.sCi + i, i,
                                     vec4(acc[4 * q][c], acc[4 * q + 1][c], acc[4 * q + 2][c], acc[4 * q + 3][c]));
            }
        }
        return;
    }
    [[unroll]] for (uint r = 0; r < ROWS; ++r) {
        if (i0 + r >= p.M) break;
        [[unroll]] for (uint c = 0; c < COLS; ++c) {
            if (j0 + c < p.N) {
                if (SWAP_C) storeC(baseC, j0 + c, i0 + r, acc[r][c]);
                else storeC(baseC, i0 + r, j0 + c, acc[r][c]);
            }
        }
    }
}
