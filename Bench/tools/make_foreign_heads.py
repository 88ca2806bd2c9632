#!/usr/bin/env python3
"""Heads trained by upstream's own code in PyTorch, for `vkprobe train --eval-only` on them
(Tests/Goldens/foreign): synthetic token sets (a class carried by a few tokens), and for EP, LP
and three other poolings the head upstream builds (`build_probe_head`: pooling, BatchNorm1d
without affine, Linear) trained with AdamW, saved with `save_file(head.state_dict())`, and the
top-1 PyTorch measures on the validation tokens in eval mode (metadata `pytorch_acc1`).
The same heads are also saved by upstream's own `util.misc.save_model` (a `.pth` holding `model`,
`args`, `saved_module`: the head of a frozen probe; for `lp` the whole model of a fine-tuning run
with `head.*` beside backbone tensors) and converted by tools/convert_checkpoint.py into
`pth_<head>.safetensors` — the head's tensors with upstream's arguments as metadata, which
`--eval-only` reads for the flags not given.

    /tmp/refenv/bin/python Bench/tools/make_foreign_heads.py --upstream EP_CHECKOUT --out Tests/Goldens/foreign
"""
import argparse, json, os, subprocess, sys, tempfile, types

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file


def tokens(n, N, D, C, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, C, (n,), generator=g)
    x = torch.randn(n, N, D, generator=g)
    centers = torch.randn(C, D, generator=torch.Generator().manual_seed(0)) * 0.45   # the same classes in both splits
    for i in range(n):   # the class in 3 random tokens
        where = torch.randperm(N, generator=g)[:3]
        x[i, where] += centers[y[i]]
    cls = x.mean(1) + centers[y] * 0.05
    return x, cls, y


def write_ep_maps(out, upstream):
    """EP's attention maps for the first 8 validation samples, from the head saved by upstream's
    misc.save_model (pth_ep): upstream's EfficientProbing computes them inside its forward and
    returns only the pooled vector, so its two lines are replayed on its own module's tensors —
    attn = softmax((cls_token · scale) @ xᵀ) — with the module built by upstream's code."""
    sys.path.insert(0, upstream)
    from poolings.ep import EfficientProbing
    from safetensors.torch import load_file
    head = load_file(os.path.join(out, "pth_ep.safetensors"))
    val = load_file(os.path.join(out, "val.safetensors"))
    Q, D = head["0.cls_token"].shape[1:]
    ep = EfficientProbing(D, num_queries=Q)
    ep.load_state_dict({k[2:]: v for k, v in head.items() if k.startswith("0.")})
    x = val["tokens"][:8].float()
    with torch.no_grad():
        q = ep.cls_token.expand(x.shape[0], -1, -1) * ep.scale
        attn = (q @ x.transpose(-2, -1)).softmax(dim=-1)
        pooled = ep(x)
        # The replayed attention is the forward's: pooling the values with it gives ep(x).
        v = ep.v(x).reshape(x.shape[0], x.shape[1], Q, -1).permute(0, 2, 1, 3)
        again = torch.matmul(attn.unsqueeze(2), v).reshape(x.shape[0], -1)
        assert torch.allclose(again, pooled, rtol=1e-5, atol=1e-6), (again - pooled).abs().max()
    save_file({"expected.maps": attn.contiguous(), "expected.pooled": pooled.contiguous()}, os.path.join(out, "ep_maps.safetensors"),
              metadata={"source": "Bench/tools/make_foreign_heads.py (write_ep_maps)", "samples": "val.safetensors[0:8]", "torch": torch.__version__})
    print("ep maps", tuple(attn.shape))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--maps-only", action="store_true", help="only (re)write ep_maps.safetensors from pth_ep.safetensors")
    a = ap.parse_args()
    if a.maps_only:
        write_ep_maps(a.out, a.upstream)
        return
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from upstream_cpu import keep_upstream_on_cpu
    keep_upstream_on_cpu(torch)
    sys.path.insert(0, a.upstream)
    from probe_heads import POOLINGS, _batchnorm
    os.makedirs(a.out, exist_ok=True)
    N, D, C = 16, 32, 4
    splits = {"train": tokens(256, N, D, C, 1), "val": tokens(128, N, D, C, 2)}
    for name, (x, cls, y) in splits.items():
        save_file({"tokens": x.contiguous(), "cls": cls.contiguous(), "labels": y.to(torch.int64)}, os.path.join(a.out, f"{name}.safetensors"))
    hp = types.SimpleNamespace(num_heads=4, ep_queries=8, d_out=1, nb_classes=C, model="vit_x", abmilp_sa="both",
                               abmilp_act="tanh", abmilp_depth=2, abmilp_cond="none", abmilp_content="all")
    model = types.SimpleNamespace(patch_embed=types.SimpleNamespace(num_patches=N))
    for head in ["ep", "lp", "abmilp", "siglip", "jepa"]:
        torch.manual_seed(3)
        if head == "lp":
            net = nn.Sequential(_batchnorm(D), nn.Linear(D, C))
        else:
            make, make_cls = POOLINGS[head]
            pool = make(D, hp, model)
            classifier = make_cls(D, hp) if make_cls else nn.Linear(D, C)
            net = nn.Sequential(pool, _batchnorm(classifier.in_features), classifier)
        opt = torch.optim.AdamW(net.parameters(), lr=5e-3, weight_decay=0.0)
        x, cls, y = splits["train"]
        inp = cls if head == "lp" else x
        net.train()
        for epoch in range(40):
            for b in range(0, len(y), 32):
                out = net(inp[b:b + 32])
                loss = F.cross_entropy(out[0] if isinstance(out, tuple) else out, y[b:b + 32])
                opt.zero_grad(); loss.backward(); opt.step()
        net.eval()
        vx, vcls, vy = splits["val"]
        with torch.no_grad():
            out = net(vcls if head == "lp" else vx)
            out = out[0] if isinstance(out, tuple) else out
            acc = (out.argmax(1) == vy).float().mean().item() * 100
        state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
        save_file(state, os.path.join(a.out, f"{head}.safetensors"),
                  metadata={"pytorch_acc1": repr(acc), "head": head, "queries": "8", "num_heads": "4", "torch": torch.__version__})
        print(head, f"{acc:.2f}%")
        # Upstream's misc.save_model, then our converter.
        sys.modules.setdefault("wandb", types.ModuleType("wandb"))   # imported by misc, unused by save_model
        from util import misc
        args = types.SimpleNamespace(**vars(hp), cls_features={"lp": "cls"}.get(head, head), output_dir=tempfile.mkdtemp(), suffix="")
        if head == "lp":   # a fine-tuning run: the whole model
            whole = nn.Module()
            whole.blocks = nn.Sequential(nn.Linear(D, D))
            whole.head = net
            whole._ep_saved_module = "model"
            saved = whole
        else:
            saved = net
        opt2 = torch.optim.AdamW(saved.parameters(), lr=1e-3)
        scaler = types.SimpleNamespace(state_dict=lambda: {})
        misc.save_model(args, 39, saved, saved, opt2, scaler, {"acc1": acc}, include_epoch_in_filename=False, filename_tag="best")
        pth = os.path.join(args.output_dir, "checkpoint-best.pth")
        dst = os.path.join(a.out, f"pth_{head}.safetensors")
        conv = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "convert_checkpoint.py")
        subprocess.run([sys.executable, conv, pth, dst], check=True)
        # Record PyTorch's accuracy beside the converter's metadata.
        from safetensors import safe_open
        with safe_open(dst, "np") as f:
            meta = dict(f.metadata()); tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta.update(pytorch_acc1=repr(acc), source=f"upstream misc.save_model ({'whole model' if head == 'lp' else 'head'}), converted")
        from safetensors.numpy import save_file as save_np
        save_np(tensors, dst, metadata=meta)
    write_ep_maps(a.out, a.upstream)


if __name__ == "__main__":
    main()
