#!/usr/bin/env python3
"""Writes the fine-tuning goldens (Tests/Goldens/finetune/<case>.safetensors): PyTorch autograd's
gradients of every parameter of a timm ViT at full width and small depth, for one backward of a
fixed loss, L = Σ forward_features(x) ⊙ C (C fixed; forward_features is the final norm's output,
every token). The gradients of `--finetune all` are those of every parameter; those of
`--finetune K` are the last K blocks' and the final norm's (the same forward, the same numbers).

Weights are not stored (ViT-S at depth 3 is 5.3 M values): every parameter is a formula both sides
evaluate, value = offset + scale · u(name, i), with u(name, i) = (splitmix64(fnv1a64(name) ^ i) >> 40)
/ 2²³ − 1 in [−1, 1) (24 bits, exact in f32) and (offset, scale) per tensor in the metadata
`weights` (JSON). C is the same formula under the name `loss.C`. Stored per tensor:

  grad.<name>             the whole gradient where it has at most 8192 values
  grad.<name>.rows        otherwise: sums over all axes but the first (leading size-1 axes
                          dropped: pos_embed's first is its positions)
  grad.<name>.cols        and over that first axis
  grad.<name>.index       256 positions (flat, as f32: exact below 2²⁴) ...
  grad.<name>.value       ... and the gradient there
  grad.<name>.sumsq       Σ g² (1,), float64-accumulated
  images                  the input (B, 3, H, W), normalised values
  expected.out            forward_features (B, T, D)

Cases: ViT-S/16 (timm `vit_small_patch16_224`, depth 3, created at 32 px: its own 2×2 table),
DINOv2-S/14 with 4 registers (`vit_small_patch14_reg4_dinov2`, depth 3, its 518-px 37×37 table
resized to the 42-px input by timm's `dynamic_img_size` — bicubic with antialias, whose gradient
reaches pos_embed through the resize), DINOv3-S/16 (rotary, storage tokens; a 48×64 input),
EVA-02 B/14 (separate q/k/v, SwiGLU + sub-LN, rotary), EVA-02 Ti/14 (packed GluMlp), AIMv2-L/14
(RMSNorm, the patch norm, unbiased projections), BEiT v2 (a relative table per block), BEiT
with one shared table, Hiera-T (stages 1, 1, 2, 1 at 64 px), and
EVA-02-CLIP E/14 at width 256 (post-norm, q/v biases, the inner attention norm). Metadata
`config` is what VulkanProbe's ViTConfig reads (with its own keys, e.g. `rope_periods`).

    /tmp/refenv/bin/python Bench/tools/make_finetune_goldens.py --out Tests/Goldens/finetune
"""
import argparse
import json
import os

import numpy as np
import timm
import torch
from safetensors.numpy import save_file

M64 = (1 << 64) - 1
CASES = {
    "vits16": dict(model="vit_small_patch16_224", over=dict(depth=3, img_size=32), timm_only={}, image=(2, 32, 32)),
    "dinov2s14reg4": dict(model="vit_small_patch14_reg4_dinov2", over=dict(depth=3), timm_only=dict(dynamic_img_size=True),
                          image=(2, 42, 42)),
    # Rotary q and k (half pairs, f32 periods as timm makes them), 4 storage tokens, LayerScale, no position table.
    "dinov3s16": dict(model="vit_small_patch16_dinov3", over=dict(depth=2), timm_only={}, ours=dict(rope_periods="fp32"), image=(2, 48, 64)),
    # Separate q/k/v (k unbiased), SwiGLU with its sub-LN, rotary (interleaved pairs) against the reference grid.
    "eva02b14": dict(model="eva02_base_patch14_224", over=dict(depth=2, img_size=56), timm_only={}, image=(2, 56, 56)),
    # The packed GluMlp (gate then value in one fc1).
    "eva02t14": dict(model="eva02_tiny_patch14_224", over=dict(depth=2, img_size=42), timm_only={}, image=(2, 42, 42)),
    # RMSNorm everywhere (the patch projection's too), SwiGLU, no biases on the projections.
    "aimv2l14": dict(model="aimv2_large_patch14_224", over=dict(depth=2, img_size=42), timm_only={}, image=(2, 42, 42)),
    # BEiT v2: a relative position table per block, q/v biases, LayerScale (gamma_1/2), no position table.
    "beitv2b16": dict(model="beitv2_base_patch16_224", over=dict(depth=2, img_size=48), timm_only={}, image=(2, 48, 48)),
    # BEiT with one table shared by every block (BEiT's and SimMIM's pretraining checkpoints).
    "beitshared": dict(model="beit_base_patch16_224", over=dict(depth=2, img_size=48, use_rel_pos_bias=False, use_shared_rel_pos_bias=True),
                       timm_only={}, image=(2, 48, 48)),
    # Hiera: the 7x7/4 embedding, three unrolls, widening + pooled stages, mask-unit attention with pooled queries.
    "hieratiny": dict(model="hiera_tiny_224", over=dict(stages=[1, 1, 2, 1], img_size=64), timm_only={}, image=(2, 64, 64)),
    # Post-norm blocks, q/v biases on a fused qkv, the attention's inner norm: EVA-02-CLIP E-14 at a small width.
    "eva02e14": dict(model="eva02_enormous_patch14_clip_224", over=dict(depth=2, img_size=42, embed_dim=256, num_heads=4),
                     timm_only={}, image=(2, 42, 42)),
}


def fnv1a64(name):
    h = 0xCBF29CE484222325
    for b in name.encode():
        h = ((h ^ b) * 0x100000001B3) & M64
    return h


def splitmix64(x):
    """Vectorised over a uint64 array (numpy wraps uint64 products)."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def formula(name, count, offset, scale):
    i = np.arange(count, dtype=np.uint64)
    u = (splitmix64(np.uint64(fnv1a64(name)) ^ i) >> np.uint64(40)).astype(np.float32) / np.float32(1 << 23) - np.float32(1)
    return np.float32(offset) + np.float32(scale) * u


def rule(name, shape, dim):
    """(offset, scale): every parameter matters (LayerScale near 1, not timm's 1e-5)."""
    leaf = name.rsplit(".", 1)[-1]
    if "norm" in name:
        return (1.0, 0.2) if leaf == "weight" else (0.0, 0.1)
    if leaf.startswith("gamma"):
        return (0.8, 0.3)
    if name in ("cls_token", "reg_token"):
        return (0.0, 1.0)
    if name == "pos_embed":
        return (0.0, 0.5)
    if leaf.endswith("bias"):
        return (0.0, 0.05)
    fan_in = int(np.prod(shape[1:]))
    return (0.0, float(np.sqrt(3.0 / fan_in)))


def max_pool_gap(model, x):
    """The smallest gap between the two largest of any group Hiera max-pools (the widened
    residual's 2x2 groups and the pooled queries')."""
    gaps = []
    hooks = []
    for blk in model.blocks:
        attn = blk.attn
        if getattr(blk, "dim", None) != getattr(blk, "dim_out", None) and hasattr(blk, "proj"):
            hooks.append(blk.proj.register_forward_hook(lambda m, i, o, s=attn.q_stride: gaps.append(top2_gap(o.view(o.shape[0], s, -1, o.shape[2]), 1))))
        if attn.q_stride > 1:
            def qhook(m, i, o, a=attn):
                B, N, _ = o.shape
                nw = N // (a.q_stride * a.window_size) if a.use_mask_unit_attn else 1
                q = o.reshape(B, -1, nw, 3, a.heads, a.head_dim).permute(3, 0, 4, 2, 1, 5)[0]
                gaps.append(top2_gap(q.reshape(B, a.heads, nw, a.q_stride, -1, a.head_dim), 3))
            hooks.append(attn.qkv.register_forward_hook(qhook))
    with torch.no_grad():
        model.forward_features(x)
    for hk in hooks:
        hk.remove()
    return min(gaps) if gaps else float("inf")


def top2_gap(t, dim):
    s = t.sort(dim=dim).values
    return (s.select(dim, -1) - s.select(dim, -2)).abs().min().item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--cases", nargs="*", default=list(CASES))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_grad_enabled(True)
    for case in args.cases:
        spec = CASES[case]
        model = timm.create_model(spec["model"], pretrained=False, num_classes=0, **spec["over"], **spec["timm_only"]).eval()
        dim = getattr(model, "embed_dim", 0)
        rules = {}
        with torch.no_grad():
            for name, p in model.named_parameters():
                r = rule(name, tuple(p.shape), dim)
                rules[name] = r
                p.copy_(torch.from_numpy(formula(name, p.numel(), *r).reshape(p.shape)))
        b, h, w = spec["image"]
        images = formula("images", b * 3 * h * w, 0.0, 2.0).reshape(b, 3, h, w)
        if hasattr(model, "unroll"):
            # Hiera max-pools: a near-tie there makes the gradient depend on the last bit of the
            # inputs (f32 here, the frozen part's f32 on the other side). Take the first image
            # formula whose every pooled group has its top two apart by 1e-4 at least.
            k = 0
            while max_pool_gap(model, torch.from_numpy(images)) < 1e-4:
                k += 1
                images = formula(f"images.{k}", b * 3 * h * w, 0.0, 2.0).reshape(b, 3, h, w)
        x = torch.from_numpy(images)
        out = model.forward_features(x)
        if out.ndim == 4:  # Hiera: (B, H, W, C) in image order
            out = out.flatten(1, 2)
        c = torch.from_numpy(formula("loss.C", out.numel(), 0.0, 1.0).reshape(out.shape))
        (out * c).sum().backward()
        tensors = {"images": images, "expected.out": out.detach().numpy().astype(np.float32)}
        for name, p in model.named_parameters():
            if p.grad is None:  # not in forward_features (DINOv3's mask token)
                continue
            g = p.grad.detach().numpy().astype(np.float32)
            if g.size <= 8192:
                tensors[f"grad.{name}"] = g
                continue
            core = [n for n in g.shape]
            while core[0] == 1:
                core = core[1:]
            flat = g.reshape(core[0], -1).astype(np.float64)
            tensors[f"grad.{name}.rows"] = flat.sum(axis=1).astype(np.float32)
            tensors[f"grad.{name}.cols"] = flat.sum(axis=0).astype(np.float32)
            idx = (splitmix64(np.uint64(fnv1a64("sample." + name)) ^ np.arange(256, dtype=np.uint64)) % np.uint64(g.size)).astype(np.int64)
            tensors[f"grad.{name}.index"] = idx.astype(np.float32)
            tensors[f"grad.{name}.value"] = g.reshape(-1)[idx]
            tensors[f"grad.{name}.sumsq"] = np.array([np.square(flat).sum()], dtype=np.float32)
        config = dict(model=spec["model"], **spec["over"], **spec.get("ours", {}))
        meta = {
            "config": json.dumps(config), "model": spec["model"], "weights": json.dumps(rules),
            "loss": "sum(forward_features(images) * C), C = formula('loss.C', 0, 1)",
            "timm": timm.__version__, "torch": torch.__version__, "timm_only": json.dumps(spec["timm_only"]),
        }
        path = os.path.join(args.out, case + ".safetensors")
        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, path, metadata=meta)
        print(case, path, os.path.getsize(path), "bytes,", len(list(model.parameters())), "parameters")


if __name__ == "__main__":
    main()
