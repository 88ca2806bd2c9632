#version 460
// Top-k of each row (largest first; equal values by smaller index), one workgroup per row:
// an exact radix select on order-preserving 32-bit keys (four 8-bit passes with a shared
// histogram) finds the k-th largest key, the elements above it and the first equal ones (in
// index order) are gathered at positions from a scan of per-invocation counts, and the k results
// are sorted in shared memory. k ≤ KMAX. Indices are the column plus `indexBase`, or (HAS_INDEX)
// read from a parallel index matrix — the second stage that merges the top-k of several chunks.
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const bool HAS_INDEX = false;
const uint KMAX = 256;
const uint WMAX = 256;

layout(set = 0, binding = 0) readonly buffer V { float values[]; };
layout(set = 0, binding = 1) readonly buffer I { int indices[]; };
layout(set = 0, binding = 2) writeonly buffer OV { float outValues[]; };
layout(set = 0, binding = 3) writeonly buffer OI { int outIndices[]; };
struct Params {
    uint rows, cols, k;
    uint offV, strideV, offI, strideI;
    uint offOV, strideOV, offOI, strideOI;
    uint indexBase;
};
PUSH_PARAMS(Params)

shared uint hist[256];
shared uint sPrefix, sNeed;
shared uint countGreater[WMAX], countEqual[WMAX];
shared float sortValue[KMAX];
shared int sortIndex[KMAX];

uint keyOf(float x) {
    uint u = x == 0.0 ? 0u : floatBitsToUint(x);   // −0 and +0 are one value
    return (u & 0x80000000u) != 0u ? ~u : (u | 0x80000000u);
}

bool before(float va, int ia, float vb, int ib) { return va > vb || (va == vb && ia < ib); }

void main() {
    LOAD_PARAMS();
    uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (row >= p.rows) return;
    uint t = gl_LocalInvocationID.x, W = gl_WorkGroupSize.x;
    uint base = p.offV + row * p.strideV;
    uint k = min(p.k, p.cols);
    // Each invocation owns a contiguous block of columns (so ties can be taken in index order).
    uint per = (p.cols + W - 1) / W;
    uint c0 = min(t * per, p.cols), c1 = min(c0 + per, p.cols);

    uint prefix = 0u, mask = 0u, need = k;
    for (int shift = 24; shift >= 0; shift -= 8) {
        for (uint b = t; b < 256u; b += W) hist[b] = 0u;
        barrier();
        for (uint c = c0; c < c1; ++c) {
            uint key = keyOf(values[base + c]);
            if ((key & mask) == prefix) atomicAdd(hist[(key >> uint(shift)) & 255u], 1u);
        }
        barrier();
        if (t == 0u) {
            uint above = 0u, bin = 0u;
            for (int b = 255; b >= 0; --b) {
                if (above + hist[b] >= need) { bin = uint(b); break; }
                above += hist[b];
            }
            sNeed = need - above;
            sPrefix = prefix | (bin << uint(shift));
        }
        barrier();
        prefix = sPrefix; need = sNeed;
        mask |= 255u << uint(shift);
        barrier();
    }
    // prefix is the k-th largest key; take every larger element and the first `need` equal ones.
    uint greater = 0u, equal = 0u;
    for (uint c = c0; c < c1; ++c) {
        uint key = keyOf(values[base + c]);
        greater += key > prefix ? 1u : 0u;
        equal += key == prefix ? 1u : 0u;
    }
    countGreater[t] = greater; countEqual[t] = equal;
    barrier();
    if (t == 0u) {
        uint g = 0u, e = 0u;
        for (uint i = 0u; i < W; ++i) {
            uint a = countGreater[i], b = countEqual[i];
            countGreater[i] = g; countEqual[i] = e;
            g += a; e += b;
        }
    }
    barrier();
    uint posG = countGreater[t], posE = (k - need) + countEqual[t];
    for (uint c = c0; c < c1; ++c) {
        float v = values[base + c];
        uint key = keyOf(v);
        int index = HAS_INDEX ? indices[p.offI + row * p.strideI + c] : int(c + p.indexBase);
        if (key > prefix) { sortValue[posG] = v; sortIndex[posG] = index; posG++; }
        else if (key == prefix && posE < k) { sortValue[posE] = v; sortIndex[posE] = index; posE++; }
    }
    for (uint i = k + t; i < KMAX; i += W) { sortValue[i] = uintBitsToFloat(0xff800000u); sortIndex[i] = 0x7fffffff; }
    barrier();
    // Bitonic sort of KMAX entries, descending by value, then ascending by index.
    for (uint size = 2u; size <= KMAX; size <<= 1) {
        for (uint stride = size >> 1; stride > 0u; stride >>= 1) {
            for (uint i = t; i < KMAX; i += W) {
                uint j = i ^ stride;
                if (j > i) {
                    bool descending = (i & size) == 0u;
                    bool swap = descending ? before(sortValue[j], sortIndex[j], sortValue[i], sortIndex[i])
                                           : before(sortValue[i], sortIndex[i], sortValue[j], sortIndex[j]);
                    if (swap) {
                        float tv = sortValue[i]; sortValue[i] = sortValue[j]; sortValue[j] = tv;
                        int ti = sortIndex[i]; sortIndex[i] = sortIndex[j]; sortIndex[j] = ti;
                    }
                }
            }
            barrier();
        }
    }
    for (uint i = t; i < k; i += W) {
        outValues[p.offOV + row * p.strideOV + i] = sortValue[i];
        outIndices[p.offOI + row * p.strideOI + i] = sortIndex[i];
    }
}
