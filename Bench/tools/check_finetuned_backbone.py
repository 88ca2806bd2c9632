#!/usr/bin/env python3
"""Checks a backbone fine-tuned by `vkprobe train --finetune` against timm: the saved model
(`<run>/<head>/backbone-last.safetensors`, timm's names) is loaded into timm's model with a strict
`load_state_dict`, and its `forward_features` on normalised images is compared with
`vkprobe extract --weights <that file> --precision fp32 --blocks norm --cls token` on the same
images (patch tokens, [CLS], registers). Also lists which tensors moved from the starting weights
(`--base`): the trained blocks and the final norm, nothing else. Writes a table and
Bench/results/finetune-<host>.json with the run's accuracy (summary.json).

    /tmp/refenv/bin/python Bench/tools/check_finetuned_backbone.py --run /tmp/ftdemo/ft2 --head ep \\
        --model vit_small_patch14_dinov2 --base demo-assets/vit_s_focus.safetensors --image-size 112
"""
import argparse
import json
import os
import platform
import subprocess
import tempfile

import numpy as np
import timm
import torch
from safetensors.numpy import load_file, save_file


def rel(got, want):
    return float(np.linalg.norm(got.astype(np.float64) - want) / max(np.linalg.norm(want.astype(np.float64)), 1e-30))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vkprobe", default=".build/release/vkprobe")
    ap.add_argument("--run", required=True)
    ap.add_argument("--head", default="ep")
    ap.add_argument("--model", required=True)
    ap.add_argument("--base", required=True, help="the weights the run started from")
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--frozen-run", help="the same head trained on the frozen backbone, for the record")
    ap.add_argument("--command", help="the vkprobe train command of the run, for the record")
    ap.add_argument("--out", default="Bench/results")
    a = ap.parse_args()
    saved_path = os.path.join(a.run, a.head, "backbone-last.safetensors")
    saved, base = load_file(saved_path), load_file(a.base)
    moved = sorted(k for k in saved if k in base and not np.array_equal(saved[k], base[k]))
    # timm at the run's input size: dynamic_img_size resizes the stored table as the forward does.
    model = timm.create_model(a.model, pretrained=False, num_classes=0, dynamic_img_size=True).eval()
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(v) for k, v in saved.items()}, strict=True)
    g = torch.Generator().manual_seed(0)
    x = torch.randn((a.images, 3, a.image_size, a.image_size), generator=g)
    with torch.no_grad():
        want = model.forward_features(x).double().numpy()
    npt = model.num_prefix_tokens
    with tempfile.TemporaryDirectory() as work:
        imgs = os.path.join(work, "images.safetensors")
        save_file({"images": x.numpy(), "labels": np.zeros(a.images, dtype=np.int64)}, imgs)
        out = os.path.join(work, "out")
        cmd = [os.path.abspath(a.vkprobe), "extract", "--model", a.model, "--weights", saved_path, "--images", imgs, "--precision", "fp32",
               "--blocks", "norm", "--cls", "token", "--batch-size", str(a.images), "--output", out,
               # timm's dynamic_img_size resizes the table with antialias (a DINOv2 run's protocol
               # uses the hub's offset resize instead): the comparison asks vkprobe for timm's.
               "--pos-embed-resize", "antialias"]
        run = subprocess.run(cmd, capture_output=True, text=True)
        if run.returncode != 0:
            raise SystemExit(run.stderr or run.stdout)
        shard = load_file(os.path.join(out, "norm", "shard-00000.safetensors"))
    errors = {"tokens": rel(shard["tokens"], want[:, npt:]), "cls": rel(shard["cls"], want[:, 0])}
    if npt > 1:
        errors["registers"] = rel(shard["registers"], want[:, 1:npt])
    summary = json.load(open(os.path.join(a.run, "summary.json")))
    head = summary["heads"][a.head]
    result = dict(run=a.run, model=a.model, image_size=a.image_size, images=a.images, timm=timm.__version__, torch=torch.__version__,
                  strict_load=dict(missing=list(missing), unexpected=list(unexpected)), errors=errors,
                  moved_tensors=len(moved), moved_blocks=sorted({k.split(".")[1] for k in moved if k.startswith("blocks.")}, key=int),
                  moved_other=[k for k in moved if not k.startswith("blocks.")], best_acc1=head["best_acc1"], best_epoch=head["best_epoch"],
                  epochs_run=head["epochs_run"], peak_device_memory_bytes=summary.get("peak_device_memory_bytes"), device=summary.get("device"))
    if a.frozen_run:
        frozen = json.load(open(os.path.join(a.frozen_run, "summary.json")))["heads"][a.head]
        result["frozen_best_acc1"] = frozen["best_acc1"]
        print(f"frozen backbone, same head and epochs: best acc@1 {frozen['best_acc1']:.2f}%")
    if a.command:
        result["command"] = a.command
    print(f"{a.model}: saved model loads into timm strictly; vkprobe extract vs timm forward_features: " +
          ", ".join(f"{k} {v:.2e}" for k, v in errors.items()))
    print(f"moved from the base: {len(moved)} tensors, blocks {result['moved_blocks']}, other {result['moved_other']}")
    print(f"run: best acc@1 {head['best_acc1']:.2f}% at epoch {head['best_epoch']} of {head['epochs_run']}")
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, f"finetune-{platform.node() or 'host'}.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=1)
    print("wrote", path)


if __name__ == "__main__":
    main()
