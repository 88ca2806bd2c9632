#!/usr/bin/env python3
"""Checks `vkprobe extract` against timm at full size, through the command line: for each timm
registry name, the model at its default input size with every parameter random (as the family
goldens draw them, so LayerScale and biases matter), its weights saved as timm names
(`model.safetensors`), normalised images, then

    vkprobe extract --model NAME --weights model.safetensors --images images.safetensors \\
        --precision fp32 --blocks norm,0,-1 --cls token --output OUT

(`--precision auto` leaves the device's default; with VK_ICD_FILENAMES it runs on another driver,
e.g. SwiftShader.)

and each token set's patch tokens, [CLS] and registers compared with timm's fp32 outputs
(`forward_features` for `norm`; the blocks' outputs for 0 and -1). Writes a table and
Bench/results/families-<host>.json.

    /tmp/refenv/bin/python Bench/tools/check_families.py --vkprobe .build/release/vkprobe [--models ...]
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np
import timm
import torch
from safetensors.numpy import load_file, save_file

sys.path.insert(0, os.path.dirname(__file__))
from make_family_goldens import randomise  # noqa: E402

MODELS = ["hiera_base_224", "beitv2_base_patch16_224", "eva02_base_patch14_224", "eva02_base_patch16_clip_224", "vit_base_patch16_dinov3",
          "vit_pe_core_base_patch16_224", "aimv2_large_patch14_224", "vit_base_patch16_gap_224", "vit_so400m_patch14_siglip_224"]


def rel(got, want):
    return float(np.linalg.norm(got.astype(np.float64) - want) / max(np.linalg.norm(want.astype(np.float64)), 1e-30))


def check(name, vkprobe, images, seed, work, precision="fp32"):
    g = torch.Generator().manual_seed(seed)
    model = timm.create_model(name, pretrained=False, num_classes=0).eval()
    randomise(model, g)
    if "dinov3" in name:
        # The registry's DINOv3 computes with bfloat16 periods, as Meta's hub weights (upstream's loader) hold them.
        with torch.no_grad():
            model.rope.periods.copy_(model.rope.periods.to(torch.bfloat16).float())
    size = tuple(model.pretrained_cfg.get("input_size", (3, 224, 224))[1:])
    x = torch.randn((images, 3, size[0], size[1]), generator=g)
    blocks = {}
    hooks = [b.register_forward_hook(lambda m, i, o, k=k: blocks.__setitem__(k, o.detach().clone())) for k, b in enumerate(model.blocks)]
    with torch.no_grad():
        t0 = time.time()
        feats = model.forward_features(x)
        timm_s = time.time() - t0
    for h in hooks:
        h.remove()
    weights = os.path.join(work, "model.safetensors")
    save_file({k: v.float().contiguous().numpy() for k, v in model.state_dict().items()
               if not k.endswith("relative_position_index")}, weights)
    imgs = os.path.join(work, "images.safetensors")
    save_file({"images": x.numpy(), "labels": np.zeros(images, dtype=np.int64)}, imgs)
    out = os.path.join(work, "out")
    depth = len(model.blocks)
    # A token set holds one grid: Hiera's taps are its last stage's blocks.
    first = model.stage_ends[-2] + 1 if hasattr(model, "stage_ends") else 0
    # `--precision auto`: the device's default (fp32 where it has no 16-bit storage, as SwiftShader).
    cmd = [vkprobe, "extract", "--model", name, "--weights", weights, "--images", imgs] + ([] if precision == "auto" else ["--precision", precision]) + [
           "--blocks", f"norm,{first},-1", "--cls", "token", "--batch-size", str(images), "--output", out]
    t0 = time.time()
    run = subprocess.run(cmd, capture_output=True, text=True)
    ours_s = time.time() - t0
    if run.returncode != 0:
        return dict(model=name, error=(run.stderr or run.stdout)[-2000:])
    npt = getattr(model, "num_prefix_tokens", 1 if getattr(model, "cls_token", None) is not None else 0)
    has_cls = getattr(model, "cls_token", None) is not None
    regs = npt - (1 if has_cls else 0)
    device = next((l for l in run.stdout.splitlines() if " on " in l and "blocks" in l), "")
    result = dict(model=name, device=device, precision=precision, image=list(size), images=images, params=sum(p.numel() for p in model.parameters()),
                  timm_forward_s=round(timm_s, 2), vkprobe_extract_s=round(ours_s, 2), errors={})
    for tap, want in [("norm", feats), (f"block{first}", blocks[first]), (f"block{depth - 1}", blocks[depth - 1])]:
        shard = load_file(os.path.join(out, tap, "shard-00000.safetensors"))
        want = want.double().numpy()
        errs = {"tokens": rel(shard["tokens"], want[:, npt:])}
        if has_cls:
            errs["cls"] = rel(shard["cls"], want[:, 0])
        if regs > 0:
            errs["registers"] = rel(shard["registers"], want[:, npt - regs:npt])
        result["errors"][tap] = errs
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vkprobe", default=".build/release/vkprobe")
    ap.add_argument("--models", nargs="*", default=MODELS)
    ap.add_argument("--images", type=int, default=2)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--precision", default="fp32", help="fp32, or auto for the device's default (no --precision)")
    ap.add_argument("--json", default=f"Bench/results/families-{platform.node()}.json")
    a = ap.parse_args()
    results = []
    for i, name in enumerate(a.models):
        with tempfile.TemporaryDirectory() as work:
            r = check(name, os.path.abspath(a.vkprobe), a.images, a.seed + i, work, a.precision)
        results.append(r)
        if "error" in r:
            print(f"{name}: FAILED\n{r['error']}", flush=True)
            continue
        worst = max(v for e in r["errors"].values() for v in e.values())
        print(f"{name:36s} {r['image'][0]}px {r['params'] / 1e6:7.1f}M  worst relative error {worst:.2e}  "
              f"({', '.join(f'{t} ' + '/'.join(f'{k} {v:.1e}' for k, v in e.items()) for t, e in r['errors'].items())})", flush=True)
    os.makedirs(os.path.dirname(a.json), exist_ok=True)
    with open(a.json, "w") as f:
        json.dump(dict(timm=timm.__version__, torch=torch.__version__, machine=platform.node(), results=results), f, indent=1)
    bad = [r["model"] for r in results if "error" in r or max(v for e in r["errors"].values() for v in e.values()) > 1e-4]
    print(f"{len(results) - len(bad)}/{len(results)} within 1e-4" + (f"; not: {', '.join(bad)}" if bad else ""))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
