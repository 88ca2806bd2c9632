// Body of softmax.comp (x as a storage buffer) and its texel build (softmax_texel) (TEXEL: x as a uniform
// texel buffer of R32UI bits, which lavapipe reads by one call that gathers every lane's element
// instead of a loop over the lanes).
// y = softmax(scale * x + mask) over the last axis. x, y: (rows, cols) with row strides;
// mask (optional): (maskRows, cols), row r uses mask row (r + maskRowOffset) % maskRows.
#include "rows.glsl"
layout(constant_id = 1) const bool HAS_MASK = false;

#ifdef TEXEL
#pragma vkprobe_texel(0, r32ui)
layout(set = 0, binding = 0) uniform usamplerBuffer xTex;
float loadX(uint i) { return uintBitsToFloat(texelFetch(xTex, int(i)).x); }
#else
layout(set = 0, binding = 0) readonly buffer X { float x[]; };
float loadX(uint i) { return x[i]; }
#endif
layout(set = 0, binding = 1) readonly buffer Mask { float mask[]; };
layout(set = 0, binding = 2) writeonly buffer Y { float y[]; };
struct Params { uint rows, cols, offX, sX, offM, maskRows, maskRowOffset, offY, sY; float scale; };
PUSH_PARAMS(Params)

float logit(uint row, uint col) {
    float v = p.scale * loadX(p.offX + row * p.sX + col);
    if (HAS_MASK) v += mask[p.offM + ((row + p.maskRowOffset) % p.maskRows) * p.cols + col];
    return v;
}

void main() {
    LOAD_PARAMS();
    FOR_EACH_ROW(row, p.rows) {
        float m = -1.0 / 0.0;
        FOR_EACH_COL(c, p.cols) m = max(m, logit(row, c));
        m = rowMax(m);
        float s = 0.0;
        FOR_EACH_COL(c, p.cols) s += exp(logit(row, c) - m);
        s = rowSum(s);
        float inv = 1.0 / s;
        FOR_EACH_COL(c, p.cols) y[p.offY + row * p.sY + c] = exp(logit(row, c) - m) * inv;
    }
}
