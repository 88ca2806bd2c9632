#!/usr/bin/env python3
"""Writes the leaderboard-row goldens (Tests/Goldens/rows/<row>.safetensors): for one row of upstream's
results table, what upstream's own code path feeds the heads from JPEG files — upstream's eval
transform (`build_transforms` of its main_linprobe.py, run as upstream defines it) on images read as
its ImageFolder reads them, through upstream's wrapper of that row's loader (models_more.py) around
the row's model with random weights at a small width:

  eva02_vitl_mim   `--timm --model eva02_large_patch14_224.mim_in22k`: timm's EVA-02 in upstream's
                   `TimmWrapper` (forward_features; cls = the mean of the prefix tokens, here [CLS]).
  aimv2_vitl       `--model aimv2-large-patch14-224`: Apple's `aim` package (AIMv2VisionEncoder) in
                   upstream's `AIMv2Wrapper` (the trunk's normed patch tokens; no [CLS]).
  (both take ImageNet's mean/std — upstream feeds them to every backbone not loaded through
  open_clip — though the checkpoints' configs carry CLIP's)

  eva02_e14, eva02_e14_plus, pe_core_l14_336, metaclip2_bigg14_378, metaclip2_bigg14,
  siglip_l16_256, siglip2_l16_256, siglip2_so400m14   `--openclip --model M --openclip_pretrain TAG`: open_clip's tower (`TimmModel` around timm's trunk with
                   the trunk's head as the projection, or open_clip's own VisionTransformer) in
                   upstream's `CLIPWrapper`; the transforms open_clip builds for M with TAG's
                   preprocessing config (squash + bilinear for PE, squash at 378). `cls` is the
                   tower's output (projected; SigLIP's: the attention pool); the tokens are the
                   trunk's `forward_features` for timm trunks ([CLS] included where there is one)
                   and the tower's patch tokens otherwise.

  mae_*, dino_vitb, ibot_*, mocov3_vitb, maskfeat_*, ijepa_vith   upstream's default loader,
                   `models_vit` (under upstream's pinned timm 0.9.16, which it needs: run these rows
                   with `PYTHONPATH=DIR` holding `pip install --target DIR --no-deps timm==0.9.16`),
                   the checkpoint through upstream's `load_finetune_checkpoint` (a timm tag, or a
                   `.pth` as upstream's converted checkpoints hold it, converted for vkprobe by
                   tools/convert_checkpoint.py). Tokens: the last block before the norm.
  beitv2_vitb, simmim_vitb   `--simmim`: upstream's `models_simmim` loading the row's `.pth`.
  dinov2_*, dinov3_*   the hub's code (`--dinov2` / `--dinov3` checkouts, source="local") in
                   upstream's `DinoWrapper`; DINOv3 needs `PYTHONPATH` on its checkout, torchmetrics
                   and termcolor (its hubconf imports them).
  hiera_*          `--timm`: TimmWrapper over timm's Hiera.
  clip_vitb16, clip_vitl   open_clip's OpenAI towers with the tag's QuickGELU.

The weights are saved in timm's names (what `vkprobe` loads from the hub; Apple's and open_clip's
towers are converted with timm's own `checkpoint_filter_fn` / `_convert_openai_clip`, the
converted model checked equal to the original; timm trunks keep their names and `head.*`, the
projection).

Each file: the model's tensors, `input.jpeg.<i>` (the JPEG files' bytes, uint8), `expected.tokens`
(N, P, D) patch tokens and `expected.cls` (N, D) where the wrapper has one, in the files' sorted
order; metadata `config` (read by `ViTConfig`), `row`, `command` (upstream's), `transform`
(upstream's eval transform as it prints), versions and upstream's commit.

    /tmp/refenv/bin/python Bench/tools/make_row_goldens.py --upstream UPSTREAM_CHECKOUT \
        [--dinov2 DINOV2_CHECKOUT] [--dinov3 DINOV3_CHECKOUT] --out Tests/Goldens/rows [--seed 3] [--rows …]

The committed files were written in three runs (the rows' libraries conflict): the models_vit rows
with `PYTHONPATH=TIMM09`, the DINOv3 rows with `PYTHONPATH=DINOV3_CHECKOUT`, the rest plainly
(`rows_by_run` below; `--list-runs` prints them).

UPSTREAM_CHECKOUT: a checkout (or `git archive` copy) of github.com/billpsomas/efficient-probing.
Written with Pillow 12 (as the transform goldens): Pillow 13 resizes images shrunk in both
dimensions vertically first, up to 2 levels from 12, which VulkanProbe follows; the SigLIP rows'
squash of the 500×333 image shows it (5e-3 relative between the two Pillows).
AIMv2 needs Apple's packages: `pip install --no-deps ml-aim/aim-v1 ml-aim/aim-v2` from a checkout
of github.com/apple/ml-aim.
"""
import argparse
import ast
import functools
import io
import json
import os
import subprocess
import sys
import types
import zlib

import numpy as np
import timm
import torch
import torchvision
import PIL
from PIL import Image
from safetensors.numpy import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_family_goldens import at_width, randomise  # noqa: E402

SMALL = dict(embed_dim=64, depth=2, num_heads=4)
ROWS = {
    "eva02_vitl_mim": dict(loader="timm", model="eva02_large_patch14_224", over=dict(SMALL, img_size=224),
                           command="--timm --model eva02_large_patch14_224.mim_in22k"),
    "aimv2_vitl": dict(loader="aimv2", model="aimv2_large_patch14_224", over=dict(SMALL, img_size=224),
                       command="--model aimv2-large-patch14-224"),
    "eva02_e14": dict(loader="openclip", model="eva02_enormous_patch14_clip_224", over=dict(SMALL, img_size=224),
                      openclip=("EVA02-E-14", "laion2b_s4b_b115k"), proj=48,
                      command="--model EVA02-E-14 --openclip --openclip_pretrain laion2b_s4b_b115k"),
    "eva02_e14_plus": dict(loader="openclip", model="eva02_enormous_patch14_clip_224", over=dict(SMALL, img_size=224),
                           openclip=("EVA02-E-14-plus", "laion2b_s9b_b144k"), proj=48,
                           command="--model EVA02-E-14-plus --openclip --openclip_pretrain laion2b_s9b_b144k"),
    "pe_core_l14_336": dict(loader="openclip", model="vit_pe_core_large_patch14_336", over=dict(SMALL, img_size=336),
                            openclip=("PE-Core-L-14-336", "meta"), proj=48,
                            command="--model PE-Core-L-14-336 --openclip --openclip_pretrain meta --input_size 336"),
    "metaclip2_bigg14_378": dict(loader="openclip", model="vit_gigantic_patch14_clip_378",
                                 over=dict(SMALL, img_size=378, mlp_ratio=4.9231), openclip=("ViT-bigG-14-worldwide-378", "metaclip2_worldwide"),
                                 proj=48, command="--model ViT-bigG-14-worldwide-378 --openclip --openclip_pretrain metaclip2_worldwide --input_size 378"),
    "metaclip2_bigg14": dict(loader="openclip", model="vit_gigantic_patch14_clip_224",
                             over=dict(SMALL, img_size=224, mlp_ratio=4.9231), openclip=("ViT-bigG-14-worldwide", "metaclip2_worldwide"),
                             proj=48, command="--model ViT-bigG-14-worldwide --openclip --openclip_pretrain metaclip2_worldwide"),
    "siglip_l16_256": dict(loader="openclip", model="vit_large_patch16_siglip_256", over=dict(SMALL, img_size=256),
                           openclip=("ViT-L-16-SigLIP-256", "webli"), proj=48,
                           command="--model ViT-L-16-SigLIP-256 --openclip --openclip_pretrain webli --input_size 256"),
    "siglip2_l16_256": dict(loader="openclip", model="vit_large_patch16_siglip_256", over=dict(SMALL, img_size=256),
                            openclip=("ViT-L-16-SigLIP2-256", "webli"), proj=48,
                            command="--model ViT-L-16-SigLIP2-256 --openclip --openclip_pretrain webli --input_size 256"),
    "siglip2_so400m14": dict(loader="openclip", model="vit_so400m_patch14_siglip_224", over=dict(SMALL, img_size=224),
                             openclip=("ViT-SO400M-14-SigLIP2", "webli"), proj=48,
                             command="--model ViT-SO400M-14-SigLIP2 --openclip --openclip_pretrain webli"),
    # models_vit rows (upstream's default loader): its VisionTransformer at a small width, the
    # checkpoint loaded by upstream's load_finetune_checkpoint — a timm tag's weights, or a `.pth`
    # ({"model": …}, as upstream's converted checkpoints), which tools/convert_checkpoint.py turns
    # into the weights vkprobe loads. Tokens: the last block, before the norm; cls: its [CLS].
    "mae_vits": dict(loader="models_vit", upstream_model="vit_small_patch16", model="vit_small_patch16_224",
                     over=dict(SMALL, img_size=224), finetune="vit_small_patch16_224.mae/checkpoint-799.pth",
                     command="--model vit_small_patch16 --finetune vit_small_patch16_224.mae/checkpoint-799.pth"),
    "mae_base": dict(loader="models_vit", upstream_model="vit_base_patch16", model="vit_base_patch16_224",
                     over=dict(SMALL, img_size=224), finetune="vit_base_patch16_224.mae",
                     command="--model vit_base_patch16 --finetune vit_base_patch16_224.mae"),
    "mae_vitl": dict(loader="models_vit", upstream_model="vit_large_patch16", model="vit_large_patch16_224",
                     over=dict(SMALL, img_size=224), finetune="vit_large_patch16_224.mae",
                     command="--model vit_large_patch16 --finetune vit_large_patch16_224.mae"),
    "dino_vitb": dict(loader="models_vit", upstream_model="vit_base_patch16", model="vit_base_patch16_224",
                      over=dict(SMALL, img_size=224), finetune="vit_base_patch16_224.dino",
                      command="--model vit_base_patch16 --finetune vit_base_patch16_224.dino"),
    "ibot_vitb": dict(loader="models_vit", upstream_model="vit_base_patch16", model="vit_base_patch16_224",
                      over=dict(SMALL, img_size=224), finetune="vit_base_patch16_224.ibot/checkpoint-799.pth",
                      command="--model vit_base_patch16 --finetune vit_base_patch16_224.ibot/checkpoint-799.pth"),
    "ibot_vitl": dict(loader="models_vit", upstream_model="vit_large_patch16", model="vit_large_patch16_224",
                      over=dict(SMALL, img_size=224), finetune="vit_large_patch16_224.ibot/checkpoint-799.pth",
                      command="--model vit_large_patch16 --finetune vit_large_patch16_224.ibot/checkpoint-799.pth"),
    "mocov3_vitb": dict(loader="models_vit", upstream_model="vit_base_patch16", model="vit_base_patch16_224",
                        over=dict(SMALL, img_size=224), finetune="vit_base_patch16_224.mocov3/checkpoint-799.pth",
                        command="--model vit_base_patch16 --finetune vit_base_patch16_224.mocov3/checkpoint-799.pth"),
    # MaskFeat's converted checkpoints hold NaN where pre-training never trained (ViT-L's 1000-way
    # head, the final norm): upstream drops them; the tap before the norm never reads them.
    "maskfeat_vitb": dict(loader="models_vit", upstream_model="vit_base_patch16", model="vit_base_patch16_224",
                          over=dict(SMALL, img_size=224), finetune="vit_base_patch16_224.maskfeat/checkpoint-799.pth",
                          nan=["norm.weight", "norm.bias"],
                          command="--model vit_base_patch16 --finetune vit_base_patch16_224.maskfeat/checkpoint-799.pth"),
    "maskfeat_vitl": dict(loader="models_vit", upstream_model="vit_large_patch16", model="vit_large_patch16_224",
                          over=dict(SMALL, img_size=224), finetune="vit_large_patch16_224.maskfeat/checkpoint-799.pth",
                          nan=["norm.weight", "norm.bias", "head.weight", "head.bias"],
                          command="--model vit_large_patch16 --finetune vit_large_patch16_224.maskfeat/checkpoint-799.pth"),
    "ijepa_vith": dict(loader="models_vit", upstream_model="vit_huge_patch14", model="vit_huge_patch14_gap_224",
                       over=dict(SMALL, img_size=224), finetune="vit_huge_patch14_224.ijepa/checkpoint-799.pth", no_cls_token=True,
                       command="--model vit_huge_patch14 --finetune vit_huge_patch14_224.ijepa/checkpoint-799.pth --no_cls_token"),
    # `--simmim` rows: upstream's SimMIM loader (models_simmim) with the row's checkpoint; tokens: the last block, no norm.
    "beitv2_vitb": dict(loader="simmim", upstream_model="vit_base_patch16", model="beitv2_base_patch16_224", over=dict(SMALL, img_size=224),
                        checkpoint="beit", finetune="vit_base_patch16_224.beitv2/checkpoint-799.pth",
                        command="--model vit_base_patch16 --simmim --finetune vit_base_patch16_224.beitv2/checkpoint-799.pth"),
    "simmim_vitb": dict(loader="simmim", upstream_model="vit_base_patch16", model="beitv2_base_patch16_224", over=dict(SMALL, img_size=224),
                        checkpoint="simmim", finetune="vit_base_patch16_224.simmim/checkpoint-799.pth",
                        command="--model vit_base_patch16 --simmim --finetune vit_base_patch16_224.simmim/checkpoint-799.pth"),
    # DINOv2 through the hub (upstream's `_dinov2`), at upstream's 224 px: the 37×37 table resized as the hub does.
    "dinov2_vitb": dict(loader="dinov2", hub="dinov2_vitb14", model="vit_base_patch14_dinov2", over=dict(SMALL, img_size=518), input_size=224,
                        command="--model dinov2_vitb14"),
    "dinov2_vitl": dict(loader="dinov2", hub="dinov2_vitl14", model="vit_large_patch14_dinov2", over=dict(SMALL, img_size=518), input_size=224,
                        command="--model dinov2_vitl14"),
    # DINOv3 through the hub (upstream's `_dinov3`; its Meta weights named as timm names them).
    "dinov3_vitb": dict(loader="dinov3", hub="dinov3_vitb16", model="vit_base_patch16_dinov3", over=dict(SMALL, img_size=224),
                        command="--model dinov3_vitb16 --dinov3_weights /path/to/dinov3_weights.pth"),
    "dinov3_vitl": dict(loader="dinov3", hub="dinov3_vitl16", model="vit_large_patch16_dinov3", over=dict(SMALL, img_size=224),
                        command="--model dinov3_vitl16 --dinov3_weights /path/to/dinov3_weights.pth"),
    "dinov3_vit7b": dict(loader="dinov3", hub="dinov3_vit7b16", model="vit_7b_patch16_dinov3", over=dict(SMALL, img_size=224),
                         command="--model dinov3_vit7b16 --dinov3_weights /path/to/dinov3_weights.pth"),
    # Franca ViT-L/14 (LAION) through its hub (upstream's `_franca`), its release checkpoint converted.
    "franca_laion": dict(loader="franca", hub="franca_vitl14", model="franca_vitl14", over=dict(embed_dim=64, depth=4, num_heads=4, img_size=518),
                         input_size=224, command="--model franca_vitl14 --franca_weights LAION"),
    # Hiera through timm (`--timm`): TimmWrapper over forward_features' (B, H, W, C) map; no [CLS].
    "hiera_base": dict(loader="timm", model="hiera_base_224", over=dict(embed_dim=16, num_heads=1, stages=[1, 2, 2, 2], img_size=224),
                       command="--model hiera_base_224.mae --timm"),
    "hiera_large": dict(loader="timm", model="hiera_large_224", over=dict(embed_dim=24, num_heads=2, stages=[1, 2, 3, 1], img_size=224),
                        command="--model hiera_large_224.mae --timm"),
    "hiera_huge": dict(loader="timm", model="hiera_huge_224", over=dict(embed_dim=32, num_heads=4, stages=[1, 2, 3, 1], img_size=224),
                       command="--model hiera_huge_224.mae --timm"),
    # OpenAI's CLIP towers through open_clip (its own VisionTransformer, QuickGELU: see build_openclip).
    "clip_vitb16": dict(loader="openclip", model="vit_base_patch16_clip_224", over=dict(SMALL, img_size=224),
                        openclip=("ViT-B-16", "openai"), proj=48, vkprobe_model="vit_base_patch16_clip_224.openai", all_projected=True, command="--model ViT-B-16 --openclip --openclip_pretrain openai"),
    "clip_vitl": dict(loader="openclip", model="vit_large_patch14_clip_224", over=dict(SMALL, img_size=224),
                      openclip=("ViT-L-14", "openai"), proj=48, vkprobe_model="vit_large_patch14_clip_224.openai", all_projected=True, command="--model ViT-L-14 --openclip --openclip_pretrain openai"),
}
# Odd sizes and modes, as a dataset holds them: landscape, portrait, greyscale, 4:2:0 and 4:4:4.
COMMIT = ""
UPSTREAM = ""
DINOV2 = ""
DINOV3 = ""
FRANCA = ""
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGES = [((301, 217), "RGB", 2), ((190, 263), "RGB", 0), ((240, 240), "L", 2), ((500, 333), "RGB", 1)]


class OpenCLIPWithoutWeights:
    """`open_clip` as upstream's build_transforms calls it, without the weights' download: the
    transforms `create_model_and_transforms(model, pretrained=tag)` returns, built by open_clip
    from the tag's preprocessing config (mean, std, interpolation, resize mode — what loading the
    tag would set) with the model on the meta device (no memory, no weights)."""
    @staticmethod
    def create_model_and_transforms(model, pretrained=None, **kw):
        import open_clip
        cfg = open_clip.get_pretrained_cfg(model, pretrained)
        assert cfg, f"open_clip has no pretrained tag {pretrained} for {model}"
        with torch.device("meta"):
            return open_clip.create_model_and_transforms(model, pretrained=None, image_mean=cfg["mean"], image_std=cfg["std"],
                                                         image_interpolation=cfg["interpolation"],
                                                         image_resize_mode=cfg["resize_mode"], device="meta", **kw)


def upstream_build_transforms(upstream):
    """upstream's `build_transforms` and the constants it reads, executed from its source."""
    src = open(os.path.join(upstream, "main_linprobe.py")).read()
    tree = ast.parse(src)
    keep = [n for n in tree.body if (isinstance(n, ast.FunctionDef) and n.name == "build_transforms")
            or (isinstance(n, ast.Assign) and any(getattr(t, "id", "") in ("IMAGENET_MEAN", "IMAGENET_STD") for t in n.targets))]
    sys.path.insert(0, upstream)
    from util.crop import RandomResizedCrop  # upstream's own
    from torchvision.transforms.autoaugment import AutoAugment, AutoAugmentPolicy
    ns = dict(transforms=torchvision.transforms, RandomResizedCrop=RandomResizedCrop, AutoAugment=AutoAugment,
              AutoAugmentPolicy=AutoAugmentPolicy, open_clip=OpenCLIPWithoutWeights)
    exec(compile(ast.Module(body=keep, type_ignores=[]), "main_linprobe.py", "exec"), ns)
    return ns["build_transforms"]


def jpeg_files(g):
    files = []
    for i, ((w, h), mode, subsampling) in enumerate(IMAGES):
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        base = np.stack([128 + 100 * np.sin(x / (7 + 3 * c) + y / (11 + c) + c) for c in range(3)], -1)
        noise = torch.randn((h, w, 3), generator=g).numpy() * 25
        rgb = np.clip(base + noise, 0, 255).astype(np.uint8)
        img = Image.fromarray(rgb).convert(mode)
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=90, subsampling=subsampling)
        files.append((f"img{i}.jpg", buf.getvalue()))
    return files


def build(row, spec, g):
    """upstream's wrapper around the row's model (random weights), and the weights in timm's names."""
    import models_more  # upstream's
    if spec["loader"] == "franca":   # not a timm architecture
        return build_franca(spec, g)
    timm_model = timm.create_model(spec["model"], pretrained=False, num_classes=0, **spec["over"]).eval()
    if spec["loader"] == "timm":
        randomise(timm_model, g)
        wrapper = lambda features: models_more.TimmWrapper(timm_model=timm_model, num_classes=10, features=features,
                                                           num_prefix_tokens=getattr(timm_model, "num_prefix_tokens", 0))
        return wrapper, timm_model.state_dict()
    if spec["loader"] == "openclip":
        return build_openclip(spec, g, timm_model)
    if spec["loader"] == "models_vit":
        return build_models_vit(spec, g, timm_model)
    if spec["loader"] == "simmim":
        return build_simmim(spec, g)
    if spec["loader"] == "dinov2":
        return build_dinov2(spec, g, timm_model)
    if spec["loader"] == "dinov3":
        return build_dinov3(spec, g, timm_model)
    from aim.v2.torch.models import AIMv2VisionEncoder
    o = spec["over"]
    apple = AIMv2VisionEncoder(img_size=o["img_size"], patch_size=14, embed_dim=o["embed_dim"],
                               mlp_hidden_dim=int(o["embed_dim"] * 2.75), num_blocks=o["depth"], num_heads=o["num_heads"]).eval()
    randomise(apple, g)
    from timm.models.vision_transformer import checkpoint_filter_fn
    converted = checkpoint_filter_fn(apple.state_dict(), timm_model)
    timm_model.load_state_dict(converted)
    probe = torch.randn((1, 3, o["img_size"], o["img_size"]), generator=g)
    with torch.no_grad():
        a, b = apple(probe, output_features=False), timm_model.forward_features(probe)
    assert torch.equal(a, b), f"timm's conversion of Apple's AIMv2 differs: {float((a - b).abs().max())}"
    return (lambda features: models_more.AIMv2Wrapper(aimv2_model=apple, num_classes=10, features=features)), timm_model.state_dict()


def upstream_function(upstream, name, ns):
    """One top-level function of upstream's main_linprobe.py, executed from its source in `ns`."""
    tree = ast.parse(open(os.path.join(upstream, "main_linprobe.py")).read())
    keep = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name]
    assert keep, f"upstream's main_linprobe.py has no {name}"
    exec(compile(ast.Module(body=keep, type_ignores=[]), "main_linprobe.py", "exec"), ns)
    return ns[name]


def build_models_vit(spec, g, timm_model):
    """upstream's models_vit model at a small width, its checkpoint loaded by upstream's own
    load_finetune_checkpoint: a timm tag (upstream's `_create_vision_transformer(tag,
    pretrained=True)`, here timm's model with random weights) or a `.pth` holding {"model": …}
    (upstream's converted checkpoints), NaN tensors and all. Returns the forward and the weights
    vkprobe loads: the tag's timm weights, or tools/convert_checkpoint.py's output for the `.pth`."""
    import pathlib
    import tempfile
    # upstream's models_vit subclasses timm 0.9's Block and VisionTransformer (its requirements pin
    # timm 0.9.16); timm 1.x's constructors pass arguments that Block does not take.
    assert timm.__version__.startswith("0.9."), (
        f"the models_vit rows need upstream's timm 0.9.16 (here {timm.__version__}): "
        "pip install --target DIR --no-deps timm==0.9.16, then PYTHONPATH=DIR … --rows " + " ".join(r for r, v in ROWS.items() if v["loader"] == "models_vit"))
    import models_vit
    from util.pos_embed import interpolate_pos_embed
    randomise(timm_model, g)
    checkpoint = {k: v.clone() for k, v in timm_model.state_dict().items()}
    for k in spec.get("nan", []):
        checkpoint[k] = torch.full_like(checkpoint[k], float("nan")) if k in checkpoint else torch.full((10, SMALL["embed_dim"]) if k.endswith("weight") else (10,), float("nan"))
    small = {k: spec["over"][k] for k in ("embed_dim", "depth", "num_heads")}
    real_init, real_oracle = models_vit.VisionTransformer.__init__, models_vit._timm_oracle
    def small_init(self, **kw):   # upstream's constructor (vit_base_patch16, …) at the small width
        real_init(self, **{**kw, **small})
    models_vit.VisionTransformer.__init__ = small_init
    # The oracle is a pretrained DINO ViT-B (a download) that only the `dino` feature reads.
    models_vit._timm_oracle = lambda *a, **k: None
    try:
        args = types.SimpleNamespace(model=spec["upstream_model"], nb_classes=10, no_cls_token=spec.get("no_cls_token", False),
                                     finetune=spec["finetune"], eval=False, simmim=False, checkpoint_key="model")
        kwargs = {"class_token": not args.no_cls_token} if "huge" in args.model else {}
        model = models_vit.__dict__[args.model](num_classes=args.nb_classes, **kwargs).eval()
    finally:
        models_vit.VisionTransformer.__init__, models_vit._timm_oracle = real_init, real_oracle
    tmp = tempfile.mkdtemp()
    if spec["finetune"].endswith(".pth"):
        path = os.path.join(tmp, spec["finetune"])
        os.makedirs(os.path.dirname(path))
        torch.save({"model": checkpoint}, path)
        args.finetune = path
        sys.path.insert(0, os.path.join(ROOT, "tools"))
        import convert_checkpoint   # the user's path: the .pth converted, then loaded by vkprobe
        sd, _, _ = convert_checkpoint.load(path, None)
        weights, _, _ = convert_checkpoint.convert(sd, convert_checkpoint.detect(list(sd)))
        weights = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in weights.items()}
    else:
        import timm.models.vision_transformer as tvt
        real_create = tvt._create_vision_transformer
        def create(name, pretrained=False, **kw):
            assert name == spec["finetune"] and pretrained, (name, pretrained)
            return timm_model
        tvt._create_vision_transformer = create
        weights = timm_model.state_dict()
    ns = dict(Path=pathlib.Path, torch=torch, interpolate_pos_embed=interpolate_pos_embed)
    try:
        upstream_function(UPSTREAM, "load_finetune_checkpoint", ns)(model, args)
    finally:
        if not spec["finetune"].endswith(".pth"):
            tvt._create_vision_transformer = real_create
    model.eval()
    def make(features):
        return lambda x, return_backbone_features: model(x, return_features=features, return_backbone_features=True)
    return make, weights


def build_simmim(spec, g):
    """`--simmim`: upstream's models_simmim.vit_base_patch16 (SimMIM's BEiT-style ViT: one
    relative-position table shared by the blocks, LayerScale, no absolute position embedding) at a
    small width, loading a `.pth` as the row's checkpoint holds it — SimMIM's own ({"model":
    {"encoder.…", "mask_token", "decoder.0.…"}}) or BEiT v2's (BEiT names, no prefix). The weights
    vkprobe loads are tools/convert_checkpoint.py's output for that file."""
    import tempfile
    import models_simmim
    small = {k: spec["over"][k] for k in ("embed_dim", "depth", "num_heads")}
    real_init = models_simmim.VisionTransformerSimMIM.__init__
    def small_init(self, **kw):
        real_init(self, **{**kw, **small})
    models_simmim.VisionTransformerSimMIM.__init__ = small_init
    try:
        source = models_simmim.VisionTransformerSimMIM(img_size=224, patch_size=16, num_classes=0, embed_dim=768, depth=12, num_heads=12,
                                                       mlp_ratio=4.0, qkv_bias=True, norm_layer=functools.partial(torch.nn.LayerNorm, eps=1e-6),
                                                       init_values=0.1, use_abs_pos_emb=False, use_rel_pos_bias=False,
                                                       use_shared_rel_pos_bias=True, use_mean_pooling=False)
        randomise(source, g)
        sd = {k: v.clone() for k, v in source.state_dict().items() if not k.startswith("head.")}
        if spec["checkpoint"] == "simmim":
            sd = {"encoder." + k: v for k, v in sd.items()}
            sd["mask_token"] = torch.randn((1, 1, small["embed_dim"]), generator=g)
            sd["decoder.0.weight"] = torch.randn((16 * 16 * 3, small["embed_dim"], 1, 1), generator=g)
            sd["decoder.0.bias"] = torch.randn((16 * 16 * 3,), generator=g)
        path = os.path.join(tempfile.mkdtemp(), spec["finetune"])
        os.makedirs(os.path.dirname(path))
        torch.save({"model": sd}, path)
        model = models_simmim.__dict__[spec["upstream_model"]](checkpoint_path=path).eval()   # upstream's _simmim
    finally:
        models_simmim.VisionTransformerSimMIM.__init__ = real_init
    with torch.no_grad():
        for k, v in source.state_dict().items():
            if not k.startswith("head.") and not k.endswith("relative_position_index"):
                assert torch.equal(model.state_dict()[k], v), f"upstream's SimMIM loader did not load {k}"
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import convert_checkpoint
    loaded, _, _ = convert_checkpoint.load(path, None)
    weights, _, _ = convert_checkpoint.convert(loaded, convert_checkpoint.detect(list(loaded)))
    weights = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in weights.items()}
    def make(features):
        return lambda x, return_backbone_features: model(x, return_features=features, return_block=None, return_backbone_features=True)
    return make, weights


def build_dinov2(spec, g, timm_model):
    """upstream's `_dinov2`: `torch.hub.load('facebookresearch/dinov2', MODEL)` in its DinoWrapper
    (`get_intermediate_layers(n=1, return_class_token=True)`: after the final norm). The hub code
    is loaded from a checkout (`--dinov2`, source="local") at a small width with random weights;
    timm's `checkpoint_filter_fn` names them as vkprobe loads them (checked equal at 518 px)."""
    from dinov2.models import vision_transformer as dv
    import models_more
    small = {k: spec["over"][k] for k in ("embed_dim", "depth", "num_heads")}
    with at_width(dv.DinoVisionTransformer, **small):
        hub = torch.hub.load(DINOV2, spec["hub"], source="local", pretrained=False).eval()
    randomise(hub, g)
    from timm.models.vision_transformer import checkpoint_filter_fn
    weights = checkpoint_filter_fn(hub.state_dict(), timm_model)
    timm_model.load_state_dict(weights)
    probe = torch.randn((1, 3, 518, 518), generator=g)
    with torch.no_grad():
        (patch, cls), = hub.get_intermediate_layers(probe, n=1, return_class_token=True)
        feats = timm_model.forward_features(probe)
        err = max(float((patch - feats[:, 1:]).abs().max()), float((cls - feats[:, 0]).abs().max()))
    assert err < 1e-4, f"timm's conversion of the hub DINOv2 differs by {err}"
    return (lambda features: models_more.DinoWrapper(dino_model=hub, num_classes=10, features=features)), weights


def build_dinov3(spec, g, timm_model):
    """upstream's `_dinov3`: the hub's DINOv3 (`torch.hub.load('facebookresearch/dinov3', MODEL,
    weights=…)`) in its DinoWrapper, from a checkout (`--dinov3`, source="local") at a small width.
    What loading Meta's checkpoint sets, set here: the RoPE periods as the checkpoint stores them
    (bfloat16), the masked k bias zero, and for B and L every qkv bias zero (the distilled models'
    are; timm's B/L have none). timm's `checkpoint_filter_fn` names the weights as vkprobe loads them."""
    from dinov3.models import vision_transformer as dv
    import models_more
    small = {k: spec["over"][k] for k in ("embed_dim", "depth", "num_heads")}
    with at_width(dv.DinoVisionTransformer, **small):
        hub = torch.hub.load(DINOV3, spec["hub"], source="local", pretrained=False).eval()
    randomise(hub, g)
    with torch.no_grad():
        for name, buf in hub.named_buffers():
            if name.endswith("periods"):
                buf.copy_(buf.to(torch.bfloat16).float())
        for name, p in hub.named_parameters():
            if name.endswith("qkv.bias"):
                if timm_model.state_dict().get(name.replace("qkv.bias", "q_bias")) is None:
                    p.zero_()
                else:
                    p[p.shape[0] // 3: 2 * p.shape[0] // 3] = 0
    from timm.models.eva import checkpoint_filter_fn
    weights = checkpoint_filter_fn(hub.state_dict(), timm_model)
    timm_model.load_state_dict(weights)
    probe = torch.randn((1, 3, 224, 224), generator=g)
    with torch.no_grad():
        (patch, cls), = hub.get_intermediate_layers(probe, n=1, return_class_token=True, norm=True)
        feats = timm_model.forward_features(probe)
        err = max(float((patch - feats[:, 5:]).abs().max()), float((cls - feats[:, 0]).abs().max()))
    # timm computes the periods in fp32 (the hub: bfloat16 from the checkpoint): close, not equal.
    assert err < 5e-2, f"timm's conversion of the hub DINOv3 differs by {err}"
    print(f"{spec['hub']}: timm's conversion within {err:.1e} of the hub (periods fp32 against bfloat16)")
    return (lambda features: models_more.DinoWrapper(dino_model=hub, num_classes=10, features=features)), weights


def build_franca(spec, g):
    """upstream's `_franca`: `torch.hub.load("valeoai/Franca", MODEL, weights="LAION", img_size=518)`
    in its FrancaWrapper (`forward_features`: `x_norm_clstoken`, `x_norm_patchtokens`), from a
    checkout (`--franca`, source="local") at a small width, loading a checkpoint in Franca's release
    layout (`teacher`: `backbone.` names, blocks in 4 chunks, DINO/iBOT heads) through the hub's own
    loader (`local_state_dict`). Franca's code here predates the `use_rasa_head` argument upstream
    passes (False in the leaderboard's commands: the RASA head is not involved), so it is dropped on
    the way in. The weights vkprobe loads: tools/convert_checkpoint.py's output for that file."""
    import re
    import tempfile
    from franca.models import vision_transformer as fv
    import models_more
    small = {k: spec["over"][k] for k in ("embed_dim", "depth", "num_heads")}
    real_init = fv.DinoVisionTransformer.__init__
    def small_init(self, *a, **kw):
        real_init(self, *a, **{**kw, **small})
    fv.DinoVisionTransformer.__init__ = small_init
    try:
        source = torch.hub.load(FRANCA, spec["hub"], source="local", pretrained=False, weights="LAION", img_size=518).eval()
        randomise(source, g)
        per_chunk = small["depth"] // 4
        ckpt = {}
        for k, v in source.state_dict().items():
            m = re.match(r"blocks\.(\d+)\.(.*)", k)
            if m:
                k = f"blocks.{int(m.group(1)) // per_chunk}.{m.group(1)}.{m.group(2)}"
            ckpt["backbone." + k] = v.clone()
        D = small["embed_dim"]
        ckpt["dino_head.mlp.0.weight"] = torch.randn((2 * D, D), generator=g)
        ckpt["ibot_head.mlp.0.weight"] = torch.randn((2 * D, D), generator=g)
        path = os.path.join(tempfile.mkdtemp(), "franca_vitl14_Laion600M.pth")
        torch.save({"teacher": ckpt}, path)
        hub = torch.hub.load(FRANCA, spec["hub"], source="local", pretrained=True, weights="LAION", img_size=518, local_state_dict=path).eval()
    finally:
        fv.DinoVisionTransformer.__init__ = real_init
    for k, v in source.state_dict().items():
        assert torch.equal(hub.state_dict()[k], v), f"Franca's loader did not load {k}"
    real_forward = hub.forward_features
    def forward_features(x, masks=None, use_rasa_head=False):
        assert not use_rasa_head
        return real_forward(x, masks)
    hub.forward_features = forward_features
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import convert_checkpoint
    loaded, _, _ = convert_checkpoint.load(path, None)
    weights, _, _ = convert_checkpoint.convert(loaded, convert_checkpoint.detect(list(loaded)))
    weights = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in weights.items()}
    return (lambda features: models_more.FrancaWrapper(franca_model=hub, num_classes=10, features=features, use_rasa_head=False)), weights


def build_openclip(spec, g, timm_model):
    """open_clip's tower for the row at a small width, in upstream's CLIPWrapper."""
    import models_more
    import open_clip
    from open_clip.model import CLIPVisionCfg, _build_vision_tower
    name, _ = spec["openclip"]
    vcfg = dict(open_clip.get_model_config(name)["vision_cfg"])
    o = spec["over"]
    if "timm_model_name" in vcfg:
        # open_clip's TimmModel as the config builds it, the trunk created at the small width.
        real = timm.create_model
        timm.create_model = lambda n, **kw: real(n, **{**kw, **{k: v for k, v in o.items()}})
        try:
            visual = _build_vision_tower(spec["proj"], CLIPVisionCfg(**vcfg))
        finally:
            timm.create_model = real
        randomise(visual, g)
        visual.eval()
        weights = visual.trunk.state_dict()   # timm's names; `head.*` is the projection where timm_proj is null
        assert ("head.weight" in weights) == (vcfg.get("timm_proj") is None), "the trunk's head is the projection exactly where timm_proj is null"
    else:
        vcfg.update(layers=o["depth"], width=o["embed_dim"], head_width=o["embed_dim"] // o["num_heads"])
        # OpenAI's weights run with QuickGELU: open_clip 2.x's OpenAI loader (what upstream, which
        # pins no open_clip, ran) builds them so; open_clip 3.x records it as the tag's `quick_gelu`
        # and only warns when the model config differs. The tower here takes the tag's activation.
        quick = bool(open_clip.get_pretrained_cfg(name, spec["openclip"][1]).get("quick_gelu", False))
        visual = _build_vision_tower(spec["proj"], CLIPVisionCfg(**vcfg), quick_gelu=quick)
        randomise(visual, g)
        visual.eval()
        from timm.models.vision_transformer import _convert_openai_clip
        timm_model = timm.create_model(spec["model"], pretrained=False, num_classes=spec["proj"], **o,
                                       **({"act_layer": "quick_gelu"} if quick else {})).eval()   # `head` = `proj`
        weights = _convert_openai_clip({"visual." + k: v for k, v in visual.state_dict().items()}, timm_model)
        timm_model.load_state_dict(weights)
        probe = torch.randn((1, 3, o["img_size"], o["img_size"]), generator=g)
        visual.output_tokens = True
        with torch.no_grad():
            pooled, tokens = visual(probe)
            feats = timm_model.forward_features(probe)
        visual.output_tokens = False
        with torch.no_grad():
            err = max(float((tokens - feats[:, 1:]).abs().max()), float((pooled - timm_model.forward_head(feats)).abs().max()))
        assert err < 1e-4, f"timm's conversion of the open_clip tower differs by {err}"
    return (lambda features: models_more.CLIPWrapper(clip_model=visual, num_classes=10, features=features)), weights


def run(row, spec, seed, upstream, out):
    g = torch.Generator().manual_seed(seed)
    args = types.SimpleNamespace(openclip=spec["loader"] == "openclip", train_aug="default", input_size=spec.get("input_size", spec["over"]["img_size"]),
                                 model=spec.get("openclip", ("", ""))[0], openclip_pretrain=spec.get("openclip", ("", ""))[1])
    _, transform = upstream_build_transforms(upstream)(args)
    files = jpeg_files(g)
    loader = torchvision.datasets.folder.pil_loader   # what upstream's datasets.ImageFolder reads with
    tmp = os.path.join(out, f".{row}-images")
    os.makedirs(tmp, exist_ok=True)
    pixels = []
    for name, data in files:
        path = os.path.join(tmp, name)
        open(path, "wb").write(data)
        pixels.append(transform(loader(path)))
        os.remove(path)
    os.rmdir(tmp)
    x = torch.stack(pixels)
    make, weights = build(row, spec, g)
    keep_head = spec["loader"] == "openclip"   # there `head` is the tower's projection, not a classifier
    tensors = {k: v.detach().float().contiguous().numpy() for k, v in weights.items()
               if not k.endswith("relative_position_index") and (keep_head or not k.startswith("head."))}
    with torch.no_grad():
        _, tokens = make("ep")(x, return_backbone_features=True)
        tensors["expected.tokens"] = tokens.float().contiguous().numpy()
        try:
            if spec.get("no_cls_token"):   # models_vit pads a zero [CLS]; upstream probes these with `pos`
                raise ValueError("no [CLS] (--no_cls_token)")
            _, cls = make("cls")(x, return_backbone_features=True)
            tensors["expected.cls"] = cls.float().contiguous().numpy()
        except ValueError as e:   # AIMv2: no [CLS] ("use features='pos'")
            print(f"{row}: no cls ({e})")
        if spec.get("all_projected"):
            # `ep_all` on open_clip's CLIP towers: the patch tokens projected into the CLIP space (then
            # concatenated after the projected [CLS], which is `cls`).
            _, projected = make("ep_all")(x, return_backbone_features=True)
            tensors["expected.tokens_projected"] = projected.float().contiguous().numpy()
    for i, (name, data) in enumerate(files):
        tensors[f"input.jpeg.{i}"] = np.frombuffer(data, dtype=np.uint8).copy()
    commit = COMMIT or subprocess.run(["git", "-C", upstream, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    # The name vkprobe runs the row as (`linprobe`'s translation of upstream's command).
    meta = {"config": json.dumps(dict(model=spec.get("vkprobe_model", spec["model"]), **spec["over"])), "row": row, "command": spec["command"],
            "transform": repr(transform).replace("\n", " "), "files": json.dumps([n for n, _ in files]),
            "timm": timm.__version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "pillow": PIL.__version__,
            "upstream": commit, "seed": str(seed), "source": "Bench/tools/make_row_goldens.py"}
    path = os.path.join(out, f"{row}.safetensors")
    save_file(tensors, path, metadata=meta)
    print(f"{path}: {spec['command']}: {len(files)} JPEGs → tokens {tuple(tensors['expected.tokens'].shape)}"
          + (f", cls {tuple(tensors['expected.cls'].shape)}" if "expected.cls" in tensors else ""))


def rows_by_run():
    """The rows each run writes: upstream's models_vit needs timm 0.9.16, the DINOv3 hub its own checkout on the path."""
    runs = {"timm 0.9.16 (PYTHONPATH=TIMM09)": [r for r, v in ROWS.items() if v["loader"] == "models_vit"],
            "DINOv3 (PYTHONPATH=DINOV3_CHECKOUT, --dinov3 DINOV3_CHECKOUT)": [r for r, v in ROWS.items() if v["loader"] == "dinov3"],
            "Franca (PYTHONPATH=FRANCA_CHECKOUT, --franca FRANCA_CHECKOUT)": [r for r, v in ROWS.items() if v["loader"] == "franca"]}
    runs["the rest (--dinov2 DINOV2_CHECKOUT)"] = [r for r in ROWS if not any(r in v for v in runs.values())]
    return runs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True, help="a checkout of billpsomas/efficient-probing")
    ap.add_argument("--out", default="Tests/Goldens/rows")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--rows", nargs="*", default=list(ROWS))
    ap.add_argument("--list-runs", action="store_true", help="print the three runs' --rows and exit")
    ap.add_argument("--dinov2", default="", help="a checkout of facebookresearch/dinov2 (the hub code upstream loads), for the DINOv2 rows")
    ap.add_argument("--dinov3", default="", help="a checkout of facebookresearch/dinov3, for the DINOv3 rows")
    ap.add_argument("--franca", default="", help="a checkout of valeoai/Franca, for the Franca row (run with PYTHONPATH on it)")
    ap.add_argument("--commit", default="", help="upstream's commit, where the checkout has no .git")
    a = ap.parse_args()
    if a.list_runs:
        for name, rows in rows_by_run().items():
            print(f"{name}: --rows {' '.join(rows)}")
        return
    global COMMIT, UPSTREAM, DINOV2, DINOV3, FRANCA
    COMMIT, UPSTREAM, DINOV2, DINOV3, FRANCA = a.commit, a.upstream, a.dinov2, a.dinov3, a.franca
    if DINOV2:
        sys.path.insert(0, DINOV2)
    os.makedirs(a.out, exist_ok=True)
    sys.path.insert(0, a.upstream)
    for row in a.rows:
        # A seed of the row's own (not of its place in ROWS), so a row's golden does not change when rows are added.
        run(row, ROWS[row], a.seed + zlib.crc32(row.encode()) % 100003, a.upstream, a.out)


if __name__ == "__main__":
    main()
