#!/usr/bin/env python3
"""Writes ViT goldens in the format of shared/goldens/vit_<family>_<tag>.safetensors with timm
(random weights of the given sizes and seed), for checking the backbone on models and image sizes
other than the shared ones: PROBE_GOLDENS=DIR swift test --filter ViTGoldenTests.

    python3 Bench/tools/make_vit_goldens.py --out DIR [--seed 5] [--tag x]

Each family is written twice: at its native image size, and with `dynamic_img_size` on images of
another size (the position embedding resized as timm does).
"""
import argparse
import json
import os

import numpy as np
import timm
import torch
from safetensors.numpy import save_file

FAMILIES = {
    "mae": dict(patch_size=8, embed_dim=96, depth=3, num_heads=3, mlp_ratio=4.0, qkv_bias=True, norm_layer="layernorm_eps1e-6"),
    "dinov2": dict(patch_size=7, embed_dim=72, depth=3, num_heads=6, init_values=1e-5, reg_tokens=4, no_embed_class=True,
                   norm_layer="layernorm_eps1e-6"),
    "dinov2noreg": dict(patch_size=7, embed_dim=48, depth=2, num_heads=4, init_values=1e-5, norm_layer="layernorm_eps1e-6"),
    "clip": dict(patch_size=8, embed_dim=64, depth=3, num_heads=4, pre_norm=True, norm_layer="layernorm_eps1e-5", act_layer="quick_gelu"),
    "siglip": dict(patch_size=8, embed_dim=64, depth=2, num_heads=2, class_token=False, global_pool="map",
                   norm_layer="layernorm_eps1e-6", act_layer="gelu_tanh"),
}


def build(args):
    from functools import partial
    kw = dict(args)
    eps = float(kw.pop("norm_layer").split("eps")[1])
    kw["norm_layer"] = partial(torch.nn.LayerNorm, eps=eps)
    act = kw.pop("act_layer", "gelu")
    if act == "quick_gelu":
        kw["act_layer"] = timm.layers.QuickGELU
    elif act == "gelu_tanh":
        kw["act_layer"] = partial(torch.nn.GELU, approximate="tanh")
    return timm.models.vision_transformer.VisionTransformer(num_classes=0, **kw)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--tag", default="x")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for family, base in FAMILIES.items():
        p = base["patch_size"]
        for variant, (img, run, dynamic) in {"": (8 * p, 8 * p, False), "dyn": (8 * p, 6 * p, True)}.items():
            torch.manual_seed(a.seed)
            args = dict(base, img_size=img)
            if dynamic:
                args["dynamic_img_size"] = True
            model = build(args).eval()
            for prm in model.parameters():   # random, not the init's zeros and ones, so every tensor matters
                torch.nn.init.normal_(prm, std=0.05 if prm.dim() > 1 else 0.2)
                if prm.dim() == 1 and prm.shape[0] == base["embed_dim"]:
                    prm.data += 1.0 if False else 0.0
            x = torch.randn(2, 3, run, run)
            outs = []
            with torch.no_grad():
                t = model.patch_embed(x)
                t = model._pos_embed(t)
                t = model.patch_drop(t)
                t = model.norm_pre(t)
                for blk in model.blocks:
                    t = blk(t)
                    outs.append(t.clone())
                normed = model.norm(t)
            tensors = {k: v.detach().numpy() for k, v in model.state_dict().items()}
            tensors["input.image"] = x.numpy()
            for i, o in enumerate(outs):
                tensors[f"expected.block.{i}"] = o.numpy()
            tensors["expected.norm"] = normed.numpy()
            cfg = dict(args)
            name = f"vit_{family}_{a.tag}{variant}.safetensors"
            save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}, os.path.join(a.out, name),
                      metadata={"config": json.dumps(cfg), "family": family, "timm": timm.__version__,
                                "tokens_layout": json.dumps("[cls?][registers?][patches row-major]")})
            print("wrote", name)


if __name__ == "__main__":
    main()
