#version 460
// Images uploaded as packed RGB bytes → normalised f32 planes, as torchvision's ToTensor +
// Normalize compute them in f32: (byte / 255 − mean[c]) / std[c].
// in: (n, words) uint, image b's H·W·3 interleaved bytes little-endian from word b·words
// (each image starts on a word); out: (n, 3, H, W) f32.
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(set = 0, binding = 0) readonly buffer In { uint src[]; };
layout(set = 0, binding = 1) writeonly buffer Out { float dst[]; };
struct Params {
    uint n, hw, imageWords, offIn, offOut;
    uint channels, firstChannel, outImageStride;   // a piece may hold some channels of each image
    float mean[3];
    float std[3];
};
PUSH_PARAMS(Params)

void main() {
    LOAD_PARAMS();
    FOR_EACH_ELEMENT(i, p.n) {
        uint px = i % p.hw, cl = (i / p.hw) % p.channels, b = i / (p.channels * p.hw), c = p.firstChannel + cl;
        uint byteIndex = px * 3u + c;
        uint word = src[p.offIn + b * p.imageWords + byteIndex / 4u];
        float v = float((word >> (8u * (byteIndex % 4u))) & 0xFFu);
        dst[p.offOut + b * p.outImageStride + cl * p.hw + px] = (v / 255.0 - p.mean[c]) / p.std[c];
    }
}
