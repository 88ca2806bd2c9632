#!/usr/bin/env python3
"""Writes the train-mode goldens (Tests/Goldens/trainmode/<case>.safetensors): upstream's frozen
backbone in train mode (engine_finetune's `model.train(True)` while the heads train), with its
random draws fixed and recorded, so VulkanProbe's `--backbone-mode train` forward can be held to
upstream's given the same draws (the draws themselves come from different generators):

  simmim   upstream's models_simmim ViT (SimMIM's loader: drop_path_rate 0.1 over the blocks,
           LayerScale, one shared relative table), train mode: each DropPath call returns the
           branch times a recorded per-sample factor (0 or 1/(1 − p), what timm's DropPath draws).
           Expected: the last block's tokens ([CLS] first), as upstream's `raw` features.
  dinov3   the hub's DINOv3 (rescale_coords=2), train mode: each block's RoPE rescale factor
           (`uniform_(−ln 2, ln 2).exp()`) fixed to a recorded value. Expected: DinoWrapper's
           `get_intermediate_layers(n=1, return_class_token=True)` tokens and [CLS].

Each file: the weights in timm's names, `input.image` (B, 3, S, S) normalised pixels,
`draw.block<i>.attn` / `draw.block<i>.mlp` (B,) factors or `draw.rope_scale` (depth,), the
expected tensors, and metadata `config`.

    PYTHONPATH=DINOV3_CHECKOUT /tmp/refenv/bin/python Bench/tools/make_trainmode_goldens.py \
        --upstream UPSTREAM_CHECKOUT --dinov3 DINOV3_CHECKOUT --out Tests/Goldens/trainmode
"""
import argparse
import functools
import json
import math
import os
import sys

import numpy as np
import timm
import torch
from safetensors.numpy import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_family_goldens import at_width, randomise  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class RecordedDropPath(torch.nn.Module):
    """timm's DropPath in train mode with its draw fixed: per sample, 0 with probability p, else
    1/(1 − p) (`scale_by_keep`), from a seeded generator; every factor is recorded."""
    def __init__(self, p, g, log):
        super().__init__()
        self.p, self.g, self.log = p, g, log

    def forward(self, x):
        assert self.training
        keep = 1 - self.p
        f = (torch.rand((x.shape[0],), generator=self.g) < keep).float() / keep
        self.log.append(f.clone())
        return x * f[:, None, None]


def simmim(upstream, g):
    sys.path.insert(0, upstream)
    import models_simmim
    model = models_simmim.VisionTransformerSimMIM(img_size=48, patch_size=16, num_classes=0, embed_dim=64, depth=3, num_heads=4,
                                                  mlp_ratio=4.0, qkv_bias=True, norm_layer=functools.partial(torch.nn.LayerNorm, eps=1e-6),
                                                  init_values=0.1, use_abs_pos_emb=False, use_rel_pos_bias=False,
                                                  use_shared_rel_pos_bias=True, use_mean_pooling=False, drop_path_rate=0.1)
    randomise(model, g)
    log = []
    rates = []
    for blk in model.blocks:
        p = float(blk.drop_path.drop_prob) if hasattr(blk.drop_path, "drop_prob") else 0.0
        rates.append(p)
        if p > 0:
            blk.drop_path = RecordedDropPath(p, g, log)
    assert rates == [float(v) for v in torch.linspace(0, 0.1, 3)], rates
    x = torch.randn((2, 3, 48, 48), generator=g)
    model.train()
    with torch.no_grad():
        raw, _, _ = model.forward_features(x, return_features="raw", return_block=None)
    t = {}
    it = iter(log)
    for i, p in enumerate(rates):
        if p > 0:
            t[f"draw.block{i}.attn"] = next(it).numpy()
            t[f"draw.block{i}.mlp"] = next(it).numpy()
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import convert_checkpoint
    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items() if not k.startswith("head")}
    weights, _, _ = convert_checkpoint.convert(sd, "beit")
    t.update(weights)
    t["input.image"] = x.numpy()
    t["expected.tokens"] = raw.float().contiguous().numpy()
    config = dict(model="beitv2_base_patch16_224", embed_dim=64, depth=3, num_heads=4, img_size=48)
    return t, config, "upstream's models_simmim (drop_path_rate 0.1), train mode, DropPath draws recorded"


def dinov3(hub_dir, g):
    from dinov3.models import vision_transformer as dv
    small = dict(embed_dim=64, depth=3, num_heads=4)
    with at_width(dv.DinoVisionTransformer, **small):
        hub = torch.hub.load(hub_dir, "dinov3_vitb16", source="local", pretrained=False)
    randomise(hub, g)
    with torch.no_grad():
        for name, buf in hub.named_buffers():
            if name.endswith("periods"):
                buf.copy_(buf.to(torch.bfloat16).float())
        for name, p in hub.named_parameters():
            if name.endswith("qkv.bias"):
                p.zero_()
    assert hub.rope_embed.rescale_coords == 2
    lo = math.log(2)
    logs = [float(v) for v in (torch.rand((3,), generator=g) * 2 * lo - lo)]
    scales = []
    real_uniform = torch.Tensor.uniform_
    values = iter(logs)
    def fixed_uniform(self, a=0.0, b=1.0, **kw):   # the hub's `torch.empty(1).uniform_(−ln r, ln r)`
        v = next(values)
        assert a <= v <= b and self.numel() == 1
        return self.fill_(v)
    x = torch.randn((2, 3, 64, 64), generator=g)
    hub.train()
    torch.Tensor.uniform_ = fixed_uniform
    try:
        with torch.no_grad():
            (patch, cls), = hub.get_intermediate_layers(x, n=1, return_class_token=True, norm=True)
    finally:
        torch.Tensor.uniform_ = real_uniform
    scales = [float(torch.tensor(v, dtype=torch.float32).exp()) for v in logs]
    from timm.models.eva import checkpoint_filter_fn
    timm_model = timm.create_model("vit_base_patch16_dinov3", pretrained=False, num_classes=0, img_size=64, **small)
    weights = checkpoint_filter_fn(hub.state_dict(), timm_model)
    t = {k: v.detach().float().contiguous().numpy() for k, v in weights.items()}
    t["draw.rope_scale"] = np.array(scales, dtype=np.float32)
    t["input.image"] = x.numpy()
    t["expected.tokens"] = patch.float().contiguous().numpy()
    t["expected.cls"] = cls.float().contiguous().numpy()
    config = dict(model="vit_base_patch16_dinov3", img_size=64, **small)
    return t, config, "the hub's DINOv3 (rescale_coords=2), train mode, each block's rescale factor recorded"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--dinov3", required=True)
    ap.add_argument("--out", default="Tests/Goldens/trainmode")
    ap.add_argument("--seed", type=int, default=11)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for name, make in [("simmim", lambda g: simmim(a.upstream, g)), ("dinov3", lambda g: dinov3(a.dinov3, g))]:
        g = torch.Generator().manual_seed(a.seed)
        t, config, what = make(g)
        meta = {"config": json.dumps(config), "what": what, "torch": torch.__version__, "timm": timm.__version__,
                "source": "Bench/tools/make_trainmode_goldens.py"}
        path = os.path.join(a.out, f"{name}.safetensors")
        save_file({k: np.ascontiguousarray(v) for k, v in t.items()}, path, metadata=meta)
        print(f"{path}: {what}; tokens {t['expected.tokens'].shape}")


if __name__ == "__main__":
    main()
