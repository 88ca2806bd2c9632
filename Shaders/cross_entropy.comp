#version 460
// Per row of logits (rows, C) with an int32 label: loss = logsumexp - logit[label];
// dlogits = gradScale * (softmax - onehot); rank = number of classes ranked above the label
// (ties broken by lower index first, so top-k correct <=> rank < k). A label outside [0, C)
// gives loss NaN and rank -1.
#include "rows.glsl"

layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) readonly buffer Lbl { int labels[]; };
layout(set = 0, binding = 2) writeonly buffer Loss { float loss[]; };
layout(set = 0, binding = 3) writeonly buffer DX { float dx[]; };
layout(set = 0, binding = 4) writeonly buffer Rank { int rank[]; };
struct Params { uint rows, C, offX, offL, offLoss, offDX, offR; float gradScale; };
PUSH_PARAMS(Params)

void main() {
    LOAD_PARAMS();
    FOR_EACH_ROW(row, p.rows) {
        uint xr = p.offX + row * p.C;
        int label = labels[p.offL + row];
        bool valid = label >= 0 && uint(label) < p.C;
        float target = valid ? x[xr + uint(label)] : 0.0;
        float m = -1.0 / 0.0;
        float above = 0.0;
        FOR_EACH_COL(c, p.C) {
            float v = x[xr + c];
            m = max(m, v);
            if (v > target || (v == target && int(c) < label)) above += 1.0;
        }
        m = rowMax(m);
        above = rowSum(above);
        float s = 0.0;
        FOR_EACH_COL(c, p.C) s += exp(x[xr + c] - m);
        s = rowSum(s);
        float lse = m + log(s);
        FOR_EACH_COL(c, p.C) {
            float sm = exp(x[xr + c] - lse);
            dx[p.offDX + row * p.C + c] = p.gradScale * (sm - (int(c) == label ? 1.0 : 0.0));
        }
        if (gl_LocalInvocationID.x == 0u) {
            loss[p.offLoss + row] = valid ? lse - target : 0.0 / 0.0;
            rank[p.offR + row] = valid ? int(above) : -1;
        }
    }
}
