#!/usr/bin/env python3
"""Checks tools/convert_checkpoint.py end to end: checkpoints in each layout it reads, made from
random models by the libraries that define them, converted, extracted with `vkprobe extract
--precision fp32`, and the tokens compared with the source model's own forward:

  openclip     open_clip's OpenAI-style ViT-B-16 tower (`visual.conv1`, `transformer.resblocks`),
               saved as open_clip's state dict: tokens after ln_post and the projected [CLS]
               (`--cls head`) against open_clip's `output_tokens` forward.
  siglip       open_clip's timm-trunk ViT-B-16-SigLIP (`visual.trunk.*`): tokens after the trunk's norm.
  mocov3       a timm ViT-B/16 saved as MoCo v3 saves it (`state_dict`, `module.base_encoder.*`,
               with a momentum encoder and predictor beside it): the last block's tokens.
  ijepa        a timm ViT-H/14-gap (no [CLS]) at a small width saved as I-JEPA does (`encoder`,
               `target_encoder`, `predictor`, `module.` prefixes): the target encoder's last block.
  simmim       timm's BEiT with one shared relative position table, saved as SimMIM's pretraining
               (`model`, `encoder.*`, mask token, decoder; upstream's loader for BEiTv2 and SimMIM):
               the last block's tokens with `beitv2_base_patch16_224`.
  maskfeat     a timm ViT-B/16 under `model` with NaN in `norm.*`, as MaskFeat's released weights:
               the last block's tokens (the norm is never applied).
  dinov3       Meta's DINOv3 B/16 checkpoint from the hub's own code (DINOV3=checkout on PYTHONPATH):
               tokens after the norm against the hub's, the tensors against timm's filter.

    DINOV3=DIR PYTHONPATH=DIR /tmp/refenv/bin/python Bench/tools/check_converters.py --vkprobe .build/debug/vkprobe
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

sys.path.insert(0, os.path.dirname(__file__))
from make_family_goldens import at_width, randomise  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def rel(got, want):
    want = np.asarray(want, dtype=np.float64)
    return float(np.linalg.norm(got.astype(np.float64) - want) / np.linalg.norm(want))


def extract(vkprobe, work, model, weights, images, tap, cls="token"):
    imgs = os.path.join(work, "images.safetensors")
    save_file({"images": images.numpy(), "labels": np.zeros(images.shape[0], dtype=np.int64)}, imgs)
    out = os.path.join(work, "out")
    cmd = [vkprobe, "extract", "--model", model, "--weights", weights, "--images", imgs, "--precision", "fp32",
           "--blocks", tap, "--cls", cls, "--batch-size", str(images.shape[0]), "--output", out]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-2000:] or r.stdout[-2000:])
    name = "norm" if tap == "norm" else next(d for d in os.listdir(out) if d.startswith("block"))
    return load_file(os.path.join(out, name, "shard-00000.safetensors"))


def convert(src, dst, *extra):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "convert_checkpoint.py"), src, dst, *extra], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-2000:] or r.stdout[-2000:])
    return r.stdout.splitlines()[0]


def last_block(model, x):
    out = {}
    h = model.blocks[-1].register_forward_hook(lambda m, i, o: out.__setitem__("x", o.detach()))
    with torch.no_grad():
        model.forward_features(x)
    h.remove()
    return out["x"]


def case_openclip(vkprobe, work, g):
    import open_clip
    model = open_clip.create_model("ViT-B-16").eval()
    randomise(model.visual, g)
    model.visual.output_tokens = True
    x = torch.randn((2, 3, 224, 224), generator=g)
    with torch.no_grad():
        pooled, tokens = model.visual(x)
    src = os.path.join(work, "open_clip_pytorch_model.bin")
    torch.save(model.state_dict(), src)
    dst = os.path.join(work, "model.safetensors")
    line = convert(src, dst)
    shard = extract(vkprobe, work, "vit_base_patch16_clip_224", dst, x, "norm", cls="head")
    return line, {"tokens": rel(shard["tokens"], tokens), "projected cls": rel(shard["cls"], pooled)}


def case_siglip(vkprobe, work, g):
    import open_clip
    model = open_clip.create_model("ViT-B-16-SigLIP").eval()
    randomise(model.visual, g)
    x = torch.randn((2, 3, 224, 224), generator=g)
    with torch.no_grad():
        feats = model.visual.trunk.forward_features(x)
    src = os.path.join(work, "open_clip_model.pth")
    torch.save(model.state_dict(), src)
    dst = os.path.join(work, "model.safetensors")
    line = convert(src, dst)
    shard = extract(vkprobe, work, "vit_base_patch16_siglip_224", dst, x, "norm")
    return line, {"tokens": rel(shard["tokens"], feats)}


def timm_vit(name, g, **kw):
    import timm
    m = timm.create_model(name, pretrained=False, num_classes=0, **kw).eval()
    randomise(m, g)
    return m


def case_mocov3(vkprobe, work, g):
    m = timm_vit("vit_base_patch16_224", g)
    x = torch.randn((2, 3, 224, 224), generator=g)
    want = last_block(m, x)
    sd = {f"module.base_encoder.{k}": v for k, v in m.state_dict().items()}
    sd.update({f"module.momentum_encoder.{k}": v + 1 for k, v in m.state_dict().items()})
    sd["module.predictor.0.weight"] = torch.randn(16, 768)
    sd["module.base_encoder.head.0.weight"] = torch.randn(16, 768)
    src = os.path.join(work, "checkpoint_0299.pth.tar")
    torch.save({"epoch": 300, "arch": "vit_base", "state_dict": sd, "optimizer": {}}, src)
    dst = os.path.join(work, "model.safetensors")
    line = convert(src, dst)
    shard = extract(vkprobe, work, "vit_base_patch16_224", dst, x, "-1")
    return line, {"tokens": rel(shard["tokens"], want[:, 1:]), "cls": rel(shard["cls"], want[:, 0])}


def case_ijepa(vkprobe, work, g):
    m = timm_vit("vit_huge_patch14_gap_224", g, embed_dim=128, depth=3, num_heads=4)
    x = torch.randn((2, 3, 224, 224), generator=g)
    want = last_block(m, x)
    other = {k: v * 0 for k, v in m.state_dict().items()}
    src = os.path.join(work, "IN1K-vit.h.14-300e.pth.tar")
    torch.save({"encoder": {f"module.{k}": v for k, v in other.items()},
                "target_encoder": {f"module.{k}": v for k, v in m.state_dict().items()},
                "predictor": {"module.predictor_embed.weight": torch.randn(4, 4)}, "epoch": 300}, src)
    dst = os.path.join(work, "model.safetensors")
    line = convert(src, dst)
    cfg = os.path.join(work, "ijepa_small.json")
    with open(cfg, "w") as f:
        f.write('{"patch_size": 14, "embed_dim": 128, "depth": 3, "num_heads": 4, "class_token": false, "img_size": 224}')
    shard = extract(vkprobe, work, cfg, dst, x, "-1")
    return line, {"tokens": rel(shard["tokens"], want)}


def case_maskfeat(vkprobe, work, g):
    m = timm_vit("vit_base_patch16_224", g)
    x = torch.randn((2, 3, 224, 224), generator=g)
    want = last_block(m, x)
    sd = dict(m.state_dict())
    sd["norm.weight"] = torch.full_like(sd["norm.weight"], float("nan"))
    sd["norm.bias"] = torch.full_like(sd["norm.bias"], float("nan"))
    src = os.path.join(work, "checkpoint-799.pth")
    torch.save({"model": sd, "epoch": 799}, src)
    dst = os.path.join(work, "model.safetensors")
    line = convert(src, dst)
    shard = extract(vkprobe, work, "vit_base_patch16_224", dst, x, "-1")
    return line, {"tokens": rel(shard["tokens"], want[:, 1:]), "cls": rel(shard["cls"], want[:, 0])}


def case_simmim(vkprobe, work, g):
    m = timm_vit("beit_base_patch16_224", g, use_rel_pos_bias=False, use_shared_rel_pos_bias=True)
    x = torch.randn((2, 3, 224, 224), generator=g)
    want = last_block(m, x)
    sd = {f"encoder.{k}": v for k, v in m.state_dict().items()}
    sd["encoder.rel_pos_bias.relative_position_index"] = torch.zeros(197, 197, dtype=torch.long)
    sd["encoder.mask_token"] = torch.zeros(1, 1, 768)
    sd["decoder.0.weight"] = torch.randn(8, 768, 1, 1)
    src = os.path.join(work, "simmim_pretrain__vit_base__img224__800ep.pth")
    torch.save({"model": sd}, src)
    dst = os.path.join(work, "model.safetensors")
    line = convert(src, dst)
    shard = extract(vkprobe, work, "beitv2_base_patch16_224", dst, x, "-1")
    return line, {"tokens": rel(shard["tokens"], want[:, 1:]), "cls": rel(shard["cls"], want[:, 0])}


def case_dinov3(vkprobe, work, g):
    """Meta's DINOv3 checkpoint (the hub's names, as upstream's --dinov3_weights file holds them;
    the hub code from a checkout on PYTHONPATH, DINOV3=that checkout): B/16 at a small width, its
    distilled zero qkv bias, the periods in bfloat16 as released; tokens after the norm at 224 px
    against the hub's get_intermediate_layers, the conversion against timm's checkpoint filter."""
    import json
    import timm
    from dinov3.models import vision_transformer as dv
    from timm.models.eva import checkpoint_filter_fn
    small = dict(embed_dim=64, depth=2, num_heads=4)
    with at_width(dv.DinoVisionTransformer, **small):
        hub = torch.hub.load(os.environ["DINOV3"], "dinov3_vitb16", source="local", pretrained=False).eval()
    randomise(hub, g)
    with torch.no_grad():
        for n, b in hub.named_buffers():
            if n.endswith("periods"):
                b.copy_(b.to(torch.bfloat16).float())
        for n, p in hub.named_parameters():
            if n.endswith("qkv.bias"):
                p.zero_()
    src = os.path.join(work, "dinov3_vitb16_pretrain_lvd1689m.pth")
    torch.save(hub.state_dict(), src)
    dst = os.path.join(work, "model.safetensors")
    line = convert(src, dst)
    tm = timm.create_model("vit_base_patch16_dinov3", pretrained=False, num_classes=0, **small)
    ref = checkpoint_filter_fn(hub.state_dict(), tm)
    got = load_file(dst)
    assert set(got) == set(ref), set(got) ^ set(ref)
    same = max(float(np.abs(got[k] - ref[k].numpy()).max()) for k in ref)
    config = os.path.join(work, "model.json")
    open(config, "w").write(json.dumps(dict(model="vit_base_patch16_dinov3", **small)))
    x = torch.randn((2, 3, 224, 224), generator=g)
    with torch.no_grad():
        (patch, cls), = hub.get_intermediate_layers(x, n=1, return_class_token=True, norm=True)
    shard = extract(vkprobe, work, config, dst, x, "norm")
    return line, {"tokens": rel(shard["tokens"], patch), "cls": rel(shard["cls"], cls), "names and values as timm's filter": same}


CASES = {"dinov3": case_dinov3, "simmim": case_simmim, "openclip": case_openclip, "siglip": case_siglip, "mocov3": case_mocov3, "ijepa": case_ijepa, "maskfeat": case_maskfeat}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vkprobe", default=".build/release/vkprobe")
    ap.add_argument("--cases", nargs="*", default=list(CASES))
    a = ap.parse_args()
    bad = []
    for i, name in enumerate(a.cases):
        g = torch.Generator().manual_seed(40 + i)
        with tempfile.TemporaryDirectory() as work:
            try:
                line, errs = CASES[name](os.path.abspath(a.vkprobe), work, g)
            except Exception as e:  # noqa: BLE001
                print(f"{name}: FAILED: {e}")
                bad.append(name)
                continue
        worst = max(errs.values())
        if worst > 1e-4:
            bad.append(name)
        print(f"{name:9s} worst {worst:.1e} ({', '.join(f'{k} {v:.1e}' for k, v in errs.items())}) -- {line}")
    print(f"{len(a.cases) - len(bad)}/{len(a.cases)} within 1e-4" + (f"; not: {', '.join(bad)}" if bad else ""))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
