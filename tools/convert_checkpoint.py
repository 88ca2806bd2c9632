#!/usr/bin/env python3
"""Converts a PyTorch pickle checkpoint of a ViT (MAE's `mae_pretrain_vit_base.pth`, iBOT,
SimMIM, DeiT, DINO, ...) into a safetensors file under timm's names, which `vkprobe extract`
loads. VulkanProbe itself never reads pickles; this script needs torch (optional dependency).

    python3 tools/convert_checkpoint.py mae_pretrain_vit_base.pth model.safetensors [--key model]

The state dict is taken from the checkpoint's `model` / `state_dict` / `teacher` entry (or
`--key`), prefixes such as `module.`, `backbone.`, `encoder.` are dropped, decoder and head
tensors are left out, and names that differ from timm's are renamed:
- iBOT/DINO/MAE already use timm's names (`blocks.i.attn.qkv.weight`, `patch_embed.proj`, ...);
- SimMIM/BEiT-style separate `q_bias`/`v_bias` become `attn.qkv.bias` (k's bias is zero);
- `gamma_1`/`gamma_2` (LayerScale) become `ls1.gamma`/`ls2.gamma`;
- a `fc_norm` kept by global-pool fine-tunes is left out (the probed tokens come before it).
Prints what it kept, renamed and dropped.
"""
import argparse
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--key", default=None, help="entry of the checkpoint that holds the state dict")
    a = ap.parse_args()
    try:
        import torch
        from safetensors.torch import save_file
    except ImportError:
        sys.exit("this script needs torch and safetensors: pip install torch safetensors")
    ckpt = torch.load(a.src, map_location="cpu", weights_only=False)
    if a.key:
        sd = ckpt[a.key]
    else:
        sd = next((ckpt[k] for k in ("model", "state_dict", "teacher", "module") if isinstance(ckpt, dict) and k in ckpt), ckpt)
    out, renamed, dropped = {}, [], []
    for name, t in sd.items():
        if not hasattr(t, "dtype"):
            continue
        n = name
        for prefix in ("module.", "backbone.", "encoder.", "model."):
            if n.startswith(prefix):
                n = n[len(prefix):]
        if n.startswith(("decoder", "mask_token", "head", "fc_norm", "lm_head", "pred")):
            dropped.append(name)
            continue
        n2 = n.replace(".gamma_1", ".ls1.gamma").replace(".gamma_2", ".ls2.gamma")
        if n2.endswith("attn.q_bias"):
            v_bias = sd[name.replace("q_bias", "v_bias")]
            n2 = n2.replace("q_bias", "qkv.bias")
            t = torch.cat([t, torch.zeros_like(t), v_bias])
        elif n2.endswith("attn.v_bias"):
            continue
        if n2 != name:
            renamed.append(f"{name} -> {n2}")
        out[n2] = t.detach().float().contiguous()
    save_file(out, a.dst)
    print(f"wrote {a.dst}: {len(out)} tensors; renamed {len(renamed)}, dropped {len(dropped)}")
    for r in renamed[:20]:
        print("  renamed", r)
    for d in dropped[:20]:
        print("  dropped", d)


if __name__ == "__main__":
    main()
