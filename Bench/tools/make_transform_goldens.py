#!/usr/bin/env python3
"""Writes transform goldens in the format of shared/goldens/transform_<tag>.safetensors.

Without --images it writes its own images (JPEGs saved by PIL with 4:2:0, 4:2:2, 4:4:4
subsampling, progressive, greyscale and CMYK, at odd sizes, plus PNGs: RGB, RGBA, palette,
greyscale). With --images DIR it takes every image of a folder of yours (recursively, the
extensions torchvision's ImageFolder reads), so that your dataset's files are checked against
PIL and torchvision: `Bench/tools/check_decoding.sh DIR` does both steps in one command.

--family clip|siglip writes open_clip's eval transforms instead (CLIP: Resize(S) + CenterCrop(S);
SigLIP: squashed to S × S; their mean/std), with open_clip when it is installed. --family pe|squash
writes the eval transform open_clip builds from a pretrained tag's config (`get_pretrained_cfg`
merged into the model's as `create_model` does, then `image_transform_v2`; needs open_clip):
PE-Core-L-14-336 `meta` (squash, bilinear, 0.5 statistics) and ViT-bigG-14-worldwide-378
`metaclip2_worldwide` (squash, bicubic, CLIP's statistics).

Per image k: `decoded.<k>` PIL's pixels after .convert("RGB") (what torchvision's loader does);
`eval.<k>` torchvision's Resize(int(S*256/224), bicubic) -> CenterCrop(S) -> ToTensor ->
Normalize(ImageNet) (computed by torchvision when it is installed, else by the same PIL calls
torchvision makes on PIL images); metadata `file.<k>` (the file, relative to the output folder)
and `size.<k>`; a file PIL cannot open gets `refused.<k>` (PIL's error) instead of tensors.

    python3 Bench/tools/make_transform_goldens.py --out DIR [--seed 3] [--tag x]
    python3 Bench/tools/make_transform_goldens.py --images DATASET --out DIR [--size 224] [--limit N]
    PROBE_GOLDENS=DIR swift test --filter TransformGoldenTests      (own images)
    vkprobe check-transforms DIR/transform_<tag>.safetensors        (any)
"""
import argparse
import json
import os
import random
import struct
from array import array

from PIL import Image

try:  # torchvision when present; the fallback makes the same PIL calls on PIL images
    from torchvision import transforms
except ImportError:
    transforms = None

try:  # open_clip's own transforms for the clip and siglip families
    import open_clip
    from open_clip.transform import image_transform as open_clip_transform
    from open_clip.transform import PreprocessCfg, image_transform_v2, merge_preprocess_dict
except ImportError:
    open_clip_transform = None

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
STATS = {"mae": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
         "clip": ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
         "siglip": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
         "pe": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
         "squash": ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))}
MEAN, STD = STATS["mae"]
# The families read from an open_clip tower's pretrained config: (model, tag).
PRETRAINED = {"pe": ("PE-Core-L-14-336", "meta"), "squash": ("ViT-bigG-14-worldwide-378", "metaclip2_worldwide")}


def pretrained_transform(family, size):
    """open_clip's eval transform for PRETRAINED[family] at crop `size`, as create_model_and_transforms
    builds it (the tag's preprocess config merged into the model's, then image_transform_v2)."""
    model, tag = PRETRAINED[family]
    pp = merge_preprocess_dict(PreprocessCfg(size=size), open_clip.get_pretrained_cfg(model, tag))
    assert tuple(pp["mean"]) == STATS[family][0] and tuple(pp["std"]) == STATS[family][1], pp
    return image_transform_v2(PreprocessCfg(**pp), is_train=False)


def eval_transform(rgb, size, family="mae"):
    """(3, S, S) float32 values, channel-major, as array('f'): upstream's eval transform (mae), or
    open_clip's for CLIP (Resize(S) + CenterCrop(S)) and SigLIP (squashed to S × S)."""
    mean, std = STATS[family]
    if family in PRETRAINED:
        if open_clip_transform is None:
            raise SystemExit(f"--family {family} needs open_clip (pip install open_clip_torch)")
        return array("f", pretrained_transform(family, size)(rgb).numpy().astype("float32").tobytes())
    if family != "mae" and open_clip_transform is not None:
        t = open_clip_transform(size, is_train=False, mean=mean, std=std, interpolation="bicubic",
                                resize_mode="shortest" if family == "clip" else "squash")
        return array("f", t(rgb).numpy().astype("float32").tobytes())
    if family == "mae" and transforms is not None:
        norm = transforms.Normalize(mean=list(MEAN), std=list(STD))
        t = transforms.Compose([transforms.Resize(int(size * 256 / 224), interpolation=3), transforms.CenterCrop(size), transforms.ToTensor(), norm])
        return array("f", t(rgb).numpy().astype("float32").tobytes())
    short = size if family == "clip" else int(size * 256 / 224)
    w, h = rgb.size
    # torchvision's _compute_resized_output_size, then PIL's resize (bicubic) and CenterCrop.
    nw, nh = (short, int(short * h / w)) if w <= h else (int(short * w / h), short)
    if family == "siglip":
        nw, nh = size, size
    r = rgb.resize((nw, nh), Image.BICUBIC)
    if nw < size or nh < size:  # CenterCrop pads with zeros first
        pw, ph = max(size - nw, 0), max(size - nh, 0)
        padded = Image.new("RGB", (nw + pw, nh + ph))
        padded.paste(r, (pw // 2, ph // 2))
        r, (nw, nh) = padded, padded.size
    left, top = int(round((nw - size) / 2.0)), int(round((nh - size) / 2.0))
    px = r.crop((left, top, left + size, top + size)).tobytes()
    out = array("f", bytes(4 * 3 * size * size))
    for c in range(3):
        m, s = mean[c], std[c]
        base = c * size * size
        for i in range(size * size):
            out[base + i] = (px[3 * i + c] / 255.0 - m) / s
    return out


def save_safetensors(path, tensors, metadata):
    """tensors: name -> (dtype "U8"/"F32", shape, bytes). The format: u64 header length, JSON, data."""
    header, offset, blobs = {"__metadata__": metadata}, 0, []
    for name in sorted(tensors):
        dtype, shape, data = tensors[name]
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def picture(rng, w, h):
    import math
    px = bytearray()
    for y in range(h):
        for x in range(w):
            for c in range(3):
                v = math.sin(x / (7 + 5 * c) + c) * 90 + math.cos(y / (11 + 3 * c)) * 60 + 128 + rng.gauss(0, 25)
                px.append(max(0, min(255, int(v))))
    return Image.frombytes("RGB", (w, h), bytes(px))


def own_images(out, seed, tag, small=False):
    rng = random.Random(seed)
    if small:  # a few small images (goldens kept in the repository)
        cases = [("jpg", dict(subsampling=2, quality=90), "RGB", (73, 51), 40), ("jpg", dict(quality=85), "RGB", (37, 61), 32),
                 ("png", {}, "RGBA", (45, 45), 40), ("jpg", dict(quality=90), "L", (50, 29), 24)]
    else:
        cases = [
        ("jpg", dict(subsampling=2, quality=90), "RGB", (333, 251), 224),
        ("jpg", dict(subsampling=1, quality=75), "RGB", (640, 427), 224),
        ("jpg", dict(subsampling=0, quality=95), "RGB", (97, 130), 96),
        ("jpg", dict(progressive=True, quality=85), "RGB", (500, 375), 160),
        ("jpg", dict(quality=80), "L", (210, 300), 112),
        ("jpg", dict(quality=90), "CMYK", (180, 140), 112),
        ("png", {}, "RGB", (123, 77), 64),
        ("png", {}, "RGBA", (90, 120), 64),
        ("png", {}, "P", (150, 100), 96),
        ("png", {}, "L", (64, 64), 48),
        ("jpg", dict(quality=92), "RGB", (1, 1), 32),
        ]
    files = []
    for k, (ext, opts, mode, (w, h), size) in enumerate(cases):
        img = picture(rng, w, h)
        if mode == "RGBA":
            img = img.convert("RGBA")
            img.putalpha(Image.frombytes("L", (w, h), bytes(rng.randrange(256) for _ in range(w * h))))
        elif mode != "RGB":
            img = img.convert(mode)
        name = f"transform_{tag}_{k}.{ext}"
        img.save(os.path.join(out, name), **opts)
        files.append((os.path.join(out, name), size))
    return files


def folder_images(root, size, limit):
    found = []
    for d, dirs, names in sorted(os.walk(root, followlinks=False)):
        dirs.sort()
        for n in sorted(names):
            if n.lower().endswith(IMG_EXTENSIONS):
                found.append((os.path.join(d, n), size))
    return found[:limit] if limit else found


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--tag", default="x")
    ap.add_argument("--images", help="a folder of your images (recursively) instead of the generated ones")
    ap.add_argument("--size", type=int, default=224, help="with --images: the eval transform's crop S")
    ap.add_argument("--limit", type=int, default=0, help="with --images: at most this many files (0: all)")
    ap.add_argument("--family", choices=sorted(STATS), default="mae", help="whose eval transform: upstream's (mae) or open_clip's (clip, siglip, squash, pe)")
    ap.add_argument("--small", action="store_true", help="without --images: four small images")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    files = folder_images(a.images, a.size, a.limit) if a.images else own_images(a.out, a.seed, a.tag, a.small)
    tensors, meta, refused = {}, {}, 0
    for k, (path, size) in enumerate(files):
        meta[f"file.{k}"] = json.dumps(os.path.relpath(path, a.out))
        meta[f"size.{k}"] = str(size)
        try:
            with Image.open(path) as im:
                rgb = im.convert("RGB")
        except Exception as e:  # what PIL refuses, torchvision's loader refuses
            meta[f"refused.{k}"] = f"{type(e).__name__}: {e}"
            refused += 1
            continue
        tensors[f"decoded.{k}"] = ("U8", (rgb.height, rgb.width, 3), rgb.tobytes())
        tensors[f"eval.{k}"] = ("F32", (3, size, size), eval_transform(rgb, size, a.family).tobytes())
    meta["family"] = a.family
    meta["pillow"] = Image.__version__  # Pillow 13 resizes some images vertically first: up to 2 levels apart from 12
    meta["mean"], meta["std"] = json.dumps(STATS[a.family][0]), json.dumps(STATS[a.family][1])
    if a.family == "mae":
        meta["transform"] = "torchvision" if transforms is not None else "PIL (torchvision's calls)"
    else:
        meta["transform"] = "open_clip" if open_clip_transform is not None else "PIL (open_clip's calls)"
        if a.family in PRETRAINED:
            meta["transform"] = f"open_clip {open_clip.__version__}: {PRETRAINED[a.family][0]} {PRETRAINED[a.family][1]}'s config: " \
                + repr(pretrained_transform(a.family, 224)).replace("\n", " ").replace("(224, 224)", "(S, S)")
    save_safetensors(os.path.join(a.out, f"transform_{a.tag}.safetensors"), tensors, meta)
    print(f"wrote transform_{a.tag}.safetensors: {len(files)} images ({refused} refused by PIL), eval transform by {meta['transform']}")


if __name__ == "__main__":
    main()
