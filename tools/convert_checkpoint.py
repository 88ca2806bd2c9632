#!/usr/bin/env python3
"""Converts a ViT checkpoint into a safetensors file under timm's names, which `vkprobe extract`
loads. VulkanProbe itself never reads pickles; pickles (`.pth`, `.bin`, `.pt`) need torch, a
safetensors input needs only numpy and safetensors.

    python3 tools/convert_checkpoint.py CKPT model.safetensors [--key KEY] [--layout auto|...]

Layouts (`--layout auto` tells them apart by their tensor names):
- timm / MAE / DINO / iBOT / DeiT / MaskFeat (converted): already timm's names under `model`,
  `state_dict`, `teacher` or at the top; prefixes `module.`, `backbone.`, `encoder.`, `model.` dropped.
- MoCo v3 (`state_dict` with `module.base_encoder.*`): the base encoder; the momentum encoder,
  predictor and projection head are left out.
- I-JEPA (`encoder`, `target_encoder`, `predictor`): the target encoder (what I-JEPA evaluates;
  `--key encoder` for the other), `module.` dropped. No [CLS]: load it with `vit_huge_patch14_gap_224`.
- open_clip (`visual.*`): the image tower. OpenAI-style towers (`visual.conv1`,
  `visual.transformer.resblocks.*`) are renamed to timm's CLIP names (`patch_embed.proj`,
  `blocks.*.attn.qkv`, `norm_pre`, `norm`; the projection `visual.proj` (D, P) becomes `head.weight`
  (P, D) with a zero `head.bias`, as timm converts it); timm-trunk towers (`visual.trunk.*`:
  SigLIP, EVA-02-CLIP, PE) keep their names, the trunk's `head` included (the projection of E-14 and
  PE, whose configs have `timm_proj: null`). The text tower is left out.
- DINOv3 (Meta's `.pth`, the hub's names; upstream's `--dinov3_weights`): timm's Eva names, as timm's
  checkpoint filter maps them (`reg_token`, `gamma_1/2`, `fc1_g/fc1_x/fc2`; a zero qkv bias dropped,
  a non-zero one as `q_bias`/`v_bias` for the `_qkvb` models). Load with `vit_*_patch16_dinov3`.
- DINOv2-style hub checkpoints (Franca's `teacher`; chunked blocks `blocks.<chunk>.<i>.*`, the fused
  SwiGLU's `mlp.w12`/`mlp.w3`): blocks numbered flat, `w12`/`w3` → `fc1`/`fc2` (timm's packed GluMlp);
  the DINO/iBOT heads, RASA head and mask token left out. Load with `franca_vitl14` (etc.).
- BEiT / BEiT v2 / SimMIM (relative position tables): BEiT's names are kept (`q_bias`, `v_bias`,
  `gamma_1`, per-block or shared `relative_position_bias_table`); the index buffers are dropped.
  Load with `beitv2_base_patch16_224` (or `beit_base_patch16_224`).
- A probe head saved by upstream's `misc.save_model` (`model`, `args`, `saved_module`): the head's
  own state dict (`0.*` pooling, `1.*` BatchNorm, `2.*` classifier), or, from a fine-tuning run's
  whole model, its `head.*` tensors without the prefix; upstream's arguments that decide the head
  (`cls_features` → `head`, `ep_queries` → `queries`, `num_heads`, `d_out`, `abmilp_*`,
  `nb_classes`) become metadata, which `vkprobe train --eval-only` / `--init-head` read for the
  flags not given.
Classifier heads (`head.*`, `fc_norm`), decoders, mask tokens are left out except the CLIP
projection. Prints what it kept, renamed and dropped, and tensors holding NaN or inf.
"""
import argparse
import re
import sys

import numpy as np

OPENAI_BLOCK = {"ln_1": "norm1", "ln_2": "norm2", "attn.in_proj_weight": "attn.qkv.weight", "attn.in_proj_bias": "attn.qkv.bias",
                "attn.out_proj": "attn.proj", "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2", "ls_1.gamma": "ls1.gamma",
                "ls_2.gamma": "ls2.gamma"}


HEAD_NAMES = {"cls": "lp", "pos": "lp_gap"}
HEAD_ARGS = {"ep_queries": "queries", "num_heads": "num_heads", "d_out": "d_out", "nb_classes": "classes",
             "abmilp_act": "abmilp_act", "abmilp_sa": "abmilp_sa", "abmilp_depth": "abmilp_depth",
             "abmilp_cond": "abmilp_cond", "abmilp_content": "abmilp_content"}


def head_checkpoint(ckpt):
    """A probe head saved by upstream's misc.save_model: (tensors, metadata), or None."""
    if not (isinstance(ckpt, dict) and "model" in ckpt and "saved_module" in ckpt):
        return None
    sd = ckpt["model"]
    if ckpt["saved_module"] != "head":
        sd = {k[len("head."):]: v for k, v in sd.items() if k.startswith("head.")}
    meta = {"saved_module": str(ckpt["saved_module"]), "epoch": str(ckpt.get("epoch", ""))}
    args = ckpt.get("args")
    if args is not None:
        cf = getattr(args, "cls_features", None)
        if cf:
            meta["head"] = HEAD_NAMES.get(cf, cf)
        for a, m in HEAD_ARGS.items():
            if getattr(args, a, None) is not None:
                meta[m] = str(getattr(args, a))
    # Integer buffers (BatchNorm's num_batches_tracked) keep their dtype.
    return {k: (v.detach().float() if v.is_floating_point() else v.detach()).cpu().numpy() for k, v in sd.items() if hasattr(v, "dtype")}, meta


def load(path, key):
    """The checkpoint's tensors as numpy arrays, by name; the entry read; metadata to keep."""
    if path.endswith(".safetensors"):
        from safetensors.numpy import load_file
        return load_file(path), None, {}
    try:
        import torch
    except ImportError:
        sys.exit(f"{path}: a pickle checkpoint needs torch (pip install torch); safetensors inputs need only numpy and safetensors")
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    head = None if key else head_checkpoint(ckpt)
    if head is not None:
        return head[0], "model", head[1]
    picked = None
    if key:
        if key not in ckpt:
            sys.exit(f"{path}: no entry '{key}' (entries: {', '.join(map(str, ckpt))})")
        sd, picked = ckpt[key], key
    elif isinstance(ckpt, dict) and "target_encoder" in ckpt and "encoder" in ckpt:
        sd, picked = ckpt["target_encoder"], "target_encoder"
    else:
        picked = next((k for k in ("model", "state_dict", "teacher", "module") if isinstance(ckpt, dict) and k in ckpt), None)
        sd = ckpt[picked] if picked else ckpt
    return {k: v.detach().float().cpu().numpy() for k, v in sd.items() if hasattr(v, "dtype")}, picked, {}


def detect(names):
    if "storage_tokens" in names or any(n.endswith("rope_embed.periods") for n in names):
        return "dinov3-meta"
    if any(".mlp.w12." in n for n in names) or any(re.match(r"(module\.)?(backbone\.)?blocks\.\d+\.\d+\.", n) for n in names):
        return "dinov2-hub"
    if any(n.startswith(("module.base_encoder.", "base_encoder.")) for n in names):
        return "mocov3"
    if any(n.startswith("visual.trunk.") for n in names):
        return "openclip-timm"
    if any(n.startswith("visual.") for n in names):
        return "openclip"
    if any("relative_position_bias_table" in n for n in names):
        return "beit"
    return "timm"


def strip(n, prefixes=("module.", "backbone.", "encoder.", "model.")):
    changed = True
    while changed:
        changed = False
        for p in prefixes:
            if n.startswith(p):
                n, changed = n[len(p):], True
    return n


def convert(sd, layout):
    out, renamed, dropped = {}, [], []

    def keep(src, dst, v):
        if src != dst:
            renamed.append(f"{src} -> {dst}")
        out[dst] = np.ascontiguousarray(v, dtype=np.float32)

    for name, v in sd.items():
        if layout == "mocov3":
            if not name.startswith(("module.base_encoder.", "base_encoder.")):
                dropped.append(name)
                continue
            n = name.split("base_encoder.", 1)[1]
            if n.startswith("head"):
                dropped.append(name)
                continue
            keep(name, n, v)
        elif layout == "dinov3-meta":
            # Meta's DINOv3 checkpoints (the hub's names; upstream's --dinov3_weights) → timm's Eva names,
            # as timm's own checkpoint filter maps them: registers `storage_tokens` → `reg_token`,
            # LayerScale `ls1/ls2.gamma` → `gamma_1/gamma_2`, SwiGLU `w1/w2/w3` → `fc1_g/fc1_x/fc2`; the
            # RoPE periods (recomputed), the k-bias mask, the mask token and the 7B's local-crop norm
            # left out. The qkv bias: the distilled models' are zero (timm's B/L/H have none) and are
            # dropped; a non-zero one becomes `q_bias`/`v_bias` (the k part is masked to zero),
            # for timm's `_qkvb` models.
            n = strip(name)
            if n.endswith((".periods", ".bias_mask")) or n == "mask_token" or n.startswith(("local_cls_norm", "head", "dino_head", "ibot_head")):
                dropped.append(name)
                continue
            if n.endswith("attn.qkv.bias"):
                q, _, vb = np.split(np.asarray(v, dtype=np.float32), 3)
                if not q.any() and not vb.any():
                    dropped.append(name + " (all zero)")
                    continue
                keep(name, n.replace("qkv.bias", "q_bias"), q)
                keep(name, n.replace("qkv.bias", "v_bias"), vb)
                continue
            n = n.replace("storage_tokens", "reg_token").replace("ls1.gamma", "gamma_1").replace("ls2.gamma", "gamma_2")
            n = n.replace("mlp.w1.", "mlp.fc1_g.").replace("mlp.w2.", "mlp.fc1_x.").replace("mlp.w3.", "mlp.fc2.")
            keep(name, n, v)
        elif layout == "dinov2-hub":
            # DINOv2-style hub checkpoints (Franca's `teacher`; DINOv2's giant): blocks in chunks
            # (`blocks.<chunk>.<i>.`, i counting over the whole model), the fused SwiGLU's packed
            # `w12` (gate then value) and `w3` — timm's packed GluMlp `fc1`, `fc2`. The SSL heads
            # and the mask token are left out.
            n = strip(name)
            if n.startswith(("dino_head.", "ibot_head.", "mask_token", "head", "rasa_head", "local_cls_norm")):
                dropped.append(name)
                continue
            n = re.sub(r"^blocks\.\d+\.(\d+)\.", r"blocks.\1.", n)
            n = n.replace(".mlp.w12.", ".mlp.fc1.").replace(".mlp.w3.", ".mlp.fc2.")
            keep(name, n, v)
        elif layout == "openclip-timm":
            if not name.startswith("visual.trunk."):
                dropped.append(name)
                continue
            n = name[len("visual.trunk."):]
            # The trunk's `head` is the tower's projection where open_clip's config has `timm_proj: null`
            # (EVA-02-CLIP E-14, PE-Core): what upstream's `cls` reads, so it is kept.
            if n.startswith("fc_norm."):
                dropped.append(name)
                continue
            keep(name, n, v)
        elif layout == "openclip":
            if not name.startswith("visual."):
                dropped.append(name)
                continue
            n = name[len("visual."):]
            if n == "conv1.weight":
                keep(name, "patch_embed.proj.weight", v)
            elif n == "class_embedding":
                keep(name, "cls_token", v.reshape(1, 1, -1))
            elif n == "positional_embedding":
                keep(name, "pos_embed", v.reshape(1, *v.shape))
            elif n.startswith("ln_pre."):
                keep(name, "norm_pre." + n[len("ln_pre."):], v)
            elif n.startswith("ln_post."):
                keep(name, "norm." + n[len("ln_post."):], v)
            elif n == "proj":
                keep(name, "head.weight", v.T)
                out["head.bias"] = np.zeros(v.shape[1], dtype=np.float32)
            elif n.startswith("transformer.resblocks."):
                i, rest = n[len("transformer.resblocks."):].split(".", 1)
                for a, b in OPENAI_BLOCK.items():
                    if rest.startswith(a):
                        rest = b + rest[len(a):]
                        break
                keep(name, f"blocks.{i}.{rest}", v)
            else:
                dropped.append(name)
        else:   # timm-style names (plain ViTs, BEiT)
            n = strip(name)
            if n.startswith(("decoder", "mask_token", "head", "fc_norm", "lm_head", "pred", "predictor")) or n.endswith("relative_position_index"):
                dropped.append(name)
                continue
            if layout == "timm":
                # BEiT-style LayerScale and q/v biases in a plain ViT (no relative tables): timm's ViT names.
                n2 = n.replace(".gamma_1", ".ls1.gamma").replace(".gamma_2", ".ls2.gamma")
                if n2.endswith("attn.q_bias"):
                    vb = sd[name.replace("q_bias", "v_bias")]
                    keep(name, n2.replace("q_bias", "qkv.bias"), np.concatenate([v, np.zeros_like(v), vb]))
                    continue
                if n2.endswith("attn.v_bias"):
                    continue
                keep(name, n2, v)
            else:
                keep(name, n, v)
    return out, renamed, dropped


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--key", default=None, help="entry of the checkpoint that holds the state dict")
    ap.add_argument("--layout", default="auto", choices=["auto", "timm", "mocov3", "openclip", "openclip-timm", "beit", "dinov2-hub", "dinov3-meta"])
    a = ap.parse_args()
    sd, picked, meta = load(a.src, a.key)
    if "saved_module" in meta:
        # A probe head: its tensors as saved, upstream's arguments as metadata.
        layout = "upstream head"
        out, renamed, dropped = {k: np.ascontiguousarray(v) for k, v in sd.items()}, [], []
    else:
        layout = detect(list(sd)) if a.layout == "auto" else a.layout
        out, renamed, dropped = convert(sd, layout)
    if not out:
        sys.exit(f"{a.src}: no tensors of a ViT found (layout {layout}; names like {', '.join(list(sd)[:5])})")
    from safetensors.numpy import save_file
    save_file(out, a.dst, metadata={"source": a.src, "layout": layout, "entry": str(picked), **meta})
    print(f"wrote {a.dst}: {len(out)} tensors from {'`' + picked + '` of ' if picked else ''}{a.src} ({layout} layout); "
          f"renamed {len(renamed)}, dropped {len(dropped)}")
    for r in renamed[:12]:
        print("  renamed", r)
    for d in dropped[:12]:
        print("  dropped", d)
    if meta:
        print("  metadata: " + ", ".join(f"{k}={v}" for k, v in sorted(meta.items())))
    bad = [n for n, v in out.items() if v.dtype.kind == "f" and not np.isfinite(v).all()]
    if bad:
        print(f"  non-finite values in: {', '.join(bad)} (vkprobe refuses a tensor it uses that holds them)")


if __name__ == "__main__":
    main()
