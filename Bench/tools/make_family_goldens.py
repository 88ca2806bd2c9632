#!/usr/bin/env python3
"""Writes the backbone-family goldens (Tests/Goldens/families/<case>.safetensors): a timm model
created by its registry name with a small width and depth (`timm.create_model(name,
pretrained=False, num_classes=0, **overrides)`), every parameter drawn at random so that each one
matters (LayerScale, q/v biases, relative position tables, norms' gains and biases included),
normalised images, and timm's fp32 outputs:

  expected.block.<i>   the output of block i (B, T, D), prefix tokens included
  expected.norm        `forward_features` (B, T, D): after the final norm, or the last block's
                       output where timm drops that norm (BEiT, EVA-02 MIM: mean pooling)
  expected.pooled      `forward_head(pre_logits=True)` where the model pools with an attention
                       pool (PE: `attn_pool`)

Metadata `config` is `{"model": <registry name>, <overrides>}`, read by `ViTConfig`; `model`
repeats the name. The cases cover BEiT (v1, v2), EVA-02 (MIM base with SwiGLU + sub-LN and
separate q/k/v; tiny with the packed GluMlp), EVA-02-CLIP (B/16 with the attention's inner norm;
E-14's post-norm blocks), DINOv3 (plain MLP; SwiGLU aligned; q/v biases) on a non-square input,
PE-Core, AIMv2, the `_gap_` ViT, and Hiera (mask-unit attention, pooled stages; its blocks'
outputs are in timm's unrolled token order).

    /tmp/refenv/bin/python Bench/tools/make_family_goldens.py --out Tests/Goldens/families [--seed 5]
"""
import argparse
import contextlib
import json
import os

import numpy as np
import timm
import torch
from safetensors.numpy import save_file

SMALL = dict(embed_dim=64, depth=2, num_heads=4)
CASES = {
    "beitv2": dict(model="beitv2_base_patch16_224", over=dict(SMALL, img_size=64), image=(2, 64, 64)),
    "beit": dict(model="beit_base_patch16_224", over=dict(SMALL, img_size=48), image=(1, 48, 48)),
    # One table for every block, as BEiT's and SimMIM's pretraining checkpoints (upstream's SimMIM loader) hold it.
    "beitshared": dict(model="beit_base_patch16_224", over=dict(SMALL, img_size=48, use_rel_pos_bias=False, use_shared_rel_pos_bias=True),
                       image=(1, 48, 48)),
    "eva02": dict(model="eva02_base_patch14_224", over=dict(SMALL, img_size=56), image=(2, 56, 56)),
    "eva02tiny": dict(model="eva02_tiny_patch14_224", over=dict(SMALL, img_size=56), image=(1, 56, 56)),
    "eva02clip": dict(model="eva02_base_patch16_clip_224", over=dict(SMALL, img_size=64), image=(1, 64, 64)),
    "eva02e": dict(model="eva02_enormous_patch14_clip_224", over=dict(SMALL, img_size=42), image=(1, 42, 42)),
    # timm regenerates DINOv3's periods in f32 (`rope_periods`: VulkanProbe's key, not passed to timm);
    # `dinov3hub` rounds them to bfloat16 as Meta's hub weights hold them (what upstream loads).
    "dinov3": dict(model="vit_base_patch16_dinov3", over=dict(SMALL), image=(2, 64, 80), ours=dict(rope_periods="fp32")),
    "dinov3hub": dict(model="vit_base_patch16_dinov3", over=dict(SMALL), image=(1, 64, 64), ours=dict(rope_periods="bf16"), bf16_periods=True),
    "dinov3swiglu": dict(model="vit_small_plus_patch16_dinov3", over=dict(SMALL), image=(1, 48, 48), ours=dict(rope_periods="fp32")),
    "dinov3qkvb": dict(model="vit_base_patch16_dinov3_qkvb", over=dict(SMALL), image=(1, 48, 64), ours=dict(rope_periods="fp32")),
    "pecore": dict(model="vit_pe_core_base_patch16_224", over=dict(SMALL, img_size=64), image=(2, 64, 64)),
    "aimv2": dict(model="aimv2_large_patch14_224", over=dict(SMALL, img_size=56), image=(2, 56, 56)),
    "vitgap": dict(model="vit_base_patch16_gap_224", over=dict(SMALL, img_size=48), image=(1, 48, 48)),
    "hiera": dict(model="hiera_base_224", over=dict(embed_dim=16, num_heads=1, stages=[1, 2, 2, 2], img_size=64), image=(2, 64, 64)),
}


@contextlib.contextmanager
def at_width(cls, **small):
    """`cls` built at a small width while inside: its constructor's arguments overridden (upstream's
    and the hubs' constructors pass their widths themselves)."""
    real = cls.__init__
    def init(self, *a, **kw):
        real(self, *a, **{**kw, **small})
    cls.__init__ = init
    try:
        yield
    finally:
        cls.__init__ = real


def randomise(model, g):
    """Every parameter at random, scaled so the forward stays well conditioned."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if p.ndim >= 2 and "relative_position_bias_table" not in name and "pos_embed" not in name and "token" not in name \
                    and "latent" not in name:
                fan_in = int(np.prod(p.shape[1:]))
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)
            elif leaf.startswith("gamma") or leaf == "gamma":
                p.copy_(0.5 + 0.2 * torch.randn(p.shape, generator=g))    # LayerScale: large enough to matter
            elif "norm" in name and leaf == "weight":
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            else:   # biases, position and relative tables, tokens, latents
                p.copy_(0.3 * torch.randn(p.shape, generator=g))


def run(case, spec, seed, out):
    g = torch.Generator().manual_seed(seed)
    model = timm.create_model(spec["model"], pretrained=False, num_classes=0, **spec["over"]).eval()
    randomise(model, g)
    if spec.get("bf16_periods"):
        # Meta's checkpoints store the periods buffer in bfloat16; the hub model computes with those values.
        with torch.no_grad():
            rope = model.rope
            rope.periods.copy_(rope.periods.to(torch.bfloat16).float())
            if getattr(rope, "pos_embed_cached", None) is not None:
                rope.pos_embed_cached.copy_(rope._create_embed(rope.feat_shape, no_aug=True))
    b, h, w = spec["image"]
    image = torch.randn((b, 3, h, w), generator=g)
    blocks = {}
    hooks = [blk.register_forward_hook(lambda m, i, o, k=k: blocks.__setitem__(k, o.detach().clone()))
             for k, blk in enumerate(model.blocks)]
    with torch.no_grad():
        feats = model.forward_features(image)
        pooled = model.forward_head(feats, pre_logits=True) if getattr(model, "attn_pool", None) is not None else None
    for hk in hooks:
        hk.remove()
    tensors = {k: v.detach().float().contiguous().numpy() for k, v in model.state_dict().items()
               if not k.endswith("relative_position_index") and not k.startswith("head.")}
    tensors["input.image"] = image.numpy()
    for k, v in blocks.items():
        tensors[f"expected.block.{k}"] = v.float().contiguous().numpy()
    tensors["expected.norm"] = feats.float().contiguous().numpy()
    if pooled is not None:
        tensors["expected.pooled"] = pooled.float().contiguous().numpy()
    config = dict(model=spec["model"], **spec["over"], **spec.get("ours", {}))
    meta = {"config": json.dumps(config), "model": spec["model"], "timm": timm.__version__, "torch": torch.__version__,
            "seed": str(seed), "source": "Bench/tools/make_family_goldens.py"}
    path = os.path.join(out, f"{case}.safetensors")
    save_file(tensors, path, metadata=meta)
    print(f"{path}: {spec['model']} {spec['over']} image {tuple(image.shape)} tokens {tuple(feats.shape)}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="Tests/Goldens/families")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--cases", nargs="*", default=list(CASES))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.manual_seed(a.seed)
    for case in a.cases:
        run(case, CASES[case], a.seed + list(CASES).index(case), a.out)


if __name__ == "__main__":
    main()
