#!/usr/bin/env python3
"""Writes the probing-protocol goldens (Tests/Goldens/protocol_<case>.safetensors): for each family,
random timm weights at a small width, normalised images at the family's default input size, and
what upstream's code path feeds its heads:

  dinov2        the hub's DINOv2 (`get_intermediate_layers(norm=True)`): a 37×37 position table
                (as 518 px at patch 14) used at a 16×16 grid (224 px): bicubic without antialias at
                scale_factor (16 + 0.1)/37 (the hub's interpolate_offset); tokens after the norm.
  dinov2reg     the hub's register models: antialiased bicubic to the exact grid; registers stripped.
  clip          an open_clip / timm CLIP tower with GELU (timm's untagged names): tokens after ln_post;
                `expected.pooled` = the projected [CLS] (timm's `head`, OpenAI's `proj`), what `lp` reads.
  clipquick     the same with QuickGELU (OpenAI's weights, timm's `_quickgelu_` names).
  siglip        timm's SigLIP trunk (exact GELU, no [CLS]): tokens after the trunk's norm;
                `expected.pooled` = the MAP head's output (`attn_pool`), what `lp` reads.

Each file: the model's tensors (timm names), `input.image` (B, 3, S, S), `expected.tokens`
(B, P, D) patch tokens, `expected.cls` (B, D) where the model has [CLS]; metadata `config`
(timm constructor arguments plus `family` and `pos_embed_resize`, read by `ViTConfig`).

    /tmp/refenv/bin/python Bench/tools/make_protocol_goldens.py --out Tests/Goldens [--seed 11]
"""
import argparse
import json
import os
from functools import partial

import numpy as np
import timm
import torch
import torch.nn.functional as F
from safetensors.numpy import save_file

CASES = {
    "dinov2": dict(args=dict(patch_size=7, embed_dim=48, depth=2, num_heads=4, init_values=1e-5, img_size=37 * 7,
                             norm_layer="layernorm_eps1e-6"), family="dinov2", resize="hub-offset", grid=16),
    "dinov2reg": dict(args=dict(patch_size=7, embed_dim=48, depth=2, num_heads=4, init_values=1e-5, img_size=37 * 7,
                                reg_tokens=4, no_embed_class=True, norm_layer="layernorm_eps1e-6"),
                      family="dinov2", resize="antialias", grid=16),
    "clip": dict(args=dict(patch_size=8, embed_dim=64, depth=2, num_heads=4, pre_norm=True, img_size=64,
                           norm_layer="layernorm_eps1e-5", act_layer="gelu"), family="clip", resize="antialias", grid=8, projection=24),
    "clipquick": dict(args=dict(patch_size=8, embed_dim=64, depth=2, num_heads=4, pre_norm=True, img_size=64,
                                norm_layer="layernorm_eps1e-5", act_layer="quick_gelu"), family="clip", resize="antialias", grid=8),
    "siglip": dict(args=dict(patch_size=8, embed_dim=64, depth=2, num_heads=2, class_token=False, global_pool="map", img_size=64,
                             norm_layer="layernorm_eps1e-6", act_layer="gelu"), family="siglip", resize="antialias", grid=8),
}


def build(args, num_classes=0):
    kw = dict(args)
    eps = float(kw.pop("norm_layer").split("eps")[1])
    kw["norm_layer"] = partial(torch.nn.LayerNorm, eps=eps)
    act = kw.pop("act_layer", "gelu")
    kw["act_layer"] = {"gelu": torch.nn.GELU, "quick_gelu": timm.layers.QuickGELU,
                       "gelu_tanh": partial(torch.nn.GELU, approximate="tanh")}[act]
    return timm.models.vision_transformer.VisionTransformer(num_classes=num_classes, **kw)


def hub_pos_embed(model, grid, resize):
    """The position embedding at `grid` as the hub DINOv2's interpolate_pos_encoding computes it."""
    pe = model.pos_embed.float()
    prefix = 0 if model.no_embed_class else model.num_prefix_tokens
    cls_pe, patch_pe = pe[:, :prefix], pe[:, prefix:]
    M, D = int(round(patch_pe.shape[1] ** 0.5)), pe.shape[-1]
    g = patch_pe.reshape(1, M, M, D).permute(0, 3, 1, 2)
    if resize == "hub-offset":
        s = (grid + 0.1) / M
        g = F.interpolate(g, mode="bicubic", antialias=False, scale_factor=(s, s))
    else:
        g = F.interpolate(g, mode="bicubic", antialias=True, size=(grid, grid))
    assert g.shape[-2:] == (grid, grid)
    return cls_pe, g.permute(0, 2, 3, 1).reshape(1, grid * grid, D)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=11)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for name, case in CASES.items():
        torch.manual_seed(a.seed)
        model = build(case["args"], case.get("projection", 0)).eval()
        for prm in model.parameters():   # random, so that every tensor matters
            torch.nn.init.normal_(prm, std=0.05 if prm.dim() > 1 else 0.2)
        p, grid = case["args"]["patch_size"], case["grid"]
        x = torch.randn(2, 3, grid * p, grid * p)
        with torch.no_grad():
            # The patch embedding at any grid (the hub's models take any size; timm's checks its own).
            t = model.patch_embed.norm(model.patch_embed.proj(x).flatten(2).transpose(1, 2))
            if case["family"] == "dinov2":
                cls_pe, patch_pe = hub_pos_embed(model, grid, case["resize"])
                prefix = []
                if model.cls_token is not None:
                    prefix.append(model.cls_token.expand(t.shape[0], -1, -1))
                if model.reg_token is not None:
                    prefix.append(model.reg_token.expand(t.shape[0], -1, -1))
                if model.no_embed_class:
                    t = torch.cat(prefix + [t + patch_pe], dim=1)
                else:
                    t = torch.cat(prefix + [t], dim=1) + torch.cat([cls_pe, patch_pe], dim=1)
            else:
                assert t.shape[1] == model.pos_embed.shape[1] - model.num_prefix_tokens * (0 if model.no_embed_class else 1)
                t = model._pos_embed(t)
            t = model.norm_pre(t)
            for blk in model.blocks:
                t = blk(t)
            normed = model.norm(t)
            if case["family"] != "dinov2":   # the same as timm's forward_features at the native grid
                assert torch.allclose(normed, model.forward_features(x), atol=1e-6)
            # What upstream's `cls` reads: CLIP's projected [CLS] (timm's head on the normed [CLS]),
            # SigLIP's attention pool (timm's forward_head before any classifier).
            has_head = case.get("projection") or case["family"] == "siglip"
            pooled = model.forward_head(normed, pre_logits=case["family"] == "siglip") if has_head else None
        n_prefix = model.num_prefix_tokens
        tensors = {k: v.detach().numpy() for k, v in model.state_dict().items()}
        tensors["input.image"] = x.numpy()
        tensors["expected.tokens"] = normed[:, n_prefix:].numpy()
        if model.cls_token is not None:
            tensors["expected.cls"] = normed[:, 0].numpy()
        if pooled is not None:
            tensors["expected.pooled"] = pooled.numpy()
        cfg = dict(case["args"], family=case["family"], pos_embed_resize=case["resize"])
        cfg.pop("global_pool", None)
        path = os.path.join(a.out, f"protocol_{name}.safetensors")
        save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}, path,
                  metadata={"config": json.dumps(cfg), "timm": timm.__version__, "torch": torch.__version__,
                            "what": "tokens upstream's code path feeds its heads (see make_protocol_goldens.py)"})
        print("wrote", path, {k: list(v.shape) for k, v in tensors.items() if k.startswith(("expected", "input"))})


if __name__ == "__main__":
    main()
