#!/usr/bin/env python3
"""Writes transform goldens in the format of shared/goldens/transform_<tag>.safetensors from images
that are not in the repo: JPEGs saved by PIL with 4:2:0, 4:2:2, 4:4:4 subsampling, progressive,
greyscale and CMYK, at odd sizes, plus PNGs (RGB, RGBA, palette, 16-bit, greyscale).
`decoded.<k>`: PIL's pixels after .convert("RGB"); `eval.<k>`: torchvision's Resize(int(S*256/224),
bicubic) -> CenterCrop(S) -> ToTensor -> Normalize(ImageNet); `train.<k>` is not written (random).

    python3 Bench/tools/make_transform_goldens.py --out DIR [--seed 3] [--tag x]
    PROBE_GOLDENS=DIR swift test --filter TransformGoldenTests
"""
import argparse
import json
import os

import numpy as np
from PIL import Image
from safetensors.numpy import save_file
from torchvision import transforms


def picture(rng, w, h):
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([np.sin(x / (7 + 5 * c) + c) * 90 + np.cos(y / (11 + 3 * c)) * 60 + 128 for c in range(3)], -1)
    base += rng.normal(0, 25, base.shape)
    return np.clip(base, 0, 255).astype(np.uint8)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--tag", default="x")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    cases = [
        ("jpg", dict(subsampling=2, quality=90), "RGB", (333, 251), 224),
        ("jpg", dict(subsampling=1, quality=75), "RGB", (640, 427), 224),
        ("jpg", dict(subsampling=0, quality=95), "RGB", (97, 130), 96),
        ("jpg", dict(progressive=True, quality=85), "RGB", (500, 375), 160),
        ("jpg", dict(quality=80), "L", (210, 300), 112),
        ("jpg", dict(quality=90), "CMYK", (180, 140), 112),
        ("png", {}, "RGB", (123, 77), 64),
        ("png", {}, "RGBA", (90, 120), 64),
        ("png", {}, "P", (150, 100), 96),
        ("png", {}, "L", (64, 64), 48),
        ("jpg", dict(quality=92), "RGB", (1, 1), 32),
    ]
    norm = transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    tensors, meta = {}, {}
    for k, (ext, opts, mode, (w, h), size) in enumerate(cases):
        img = Image.fromarray(picture(rng, w, h))
        if mode == "RGBA":
            img = img.convert("RGBA")
            alpha = Image.fromarray((rng.random((h, w)) * 255).astype(np.uint8))
            img.putalpha(alpha)
        elif mode != "RGB":
            img = img.convert(mode)
        name = f"transform_{a.tag}_{k}.{ext}"
        img.save(os.path.join(a.out, name), **opts)
        rgb = Image.open(os.path.join(a.out, name)).convert("RGB")
        t = transforms.Compose([transforms.Resize(int(size * 256 / 224), interpolation=3), transforms.CenterCrop(size), transforms.ToTensor(), norm])
        tensors[f"decoded.{k}"] = np.asarray(rgb, dtype=np.uint8)
        tensors[f"eval.{k}"] = t(rgb).numpy()
        meta[f"size.{k}"] = str(size)
        meta[f"file.{k}"] = json.dumps(name)
    save_file(tensors, os.path.join(a.out, f"transform_{a.tag}.safetensors"), metadata=meta)
    print("wrote", len(cases), "images")


if __name__ == "__main__":
    main()
