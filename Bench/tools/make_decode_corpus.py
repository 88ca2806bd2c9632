#!/usr/bin/env python3
"""Writes a corpus of odd JPEG and PNG files and what PIL makes of each, for the decoder tests.

    make_decode_corpus.py OUT [--eval-size S]

For every file OUT/NAME: PIL's `Image.open(f).convert("RGB")` (what torchvision's ImageFolder
loader does) as OUT/NAME.rgb (raw bytes, row-major RGB), and torchvision's eval transform
(Resize(int(S·256/224)) bicubic on the PIL image, then CenterCrop(S)) as OUT/NAME.eval.rgb;
or, where PIL refuses the file, its error. OUT/manifest.json lists them.

PIL writes what it can write; the rest (16-bit colour, 2/4-bit grey, Adam7 interlacing, odd
chunks) comes from the raw PNG writer below, and restart markers and arithmetic coding from
libjpeg-turbo's cjpeg. Needs Pillow and cjpeg (Debian: python3-pil, libjpeg-turbo-progs).
"""
import argparse, io, json, os, random, struct, subprocess, sys, tempfile, zlib
from PIL import Image

Image.MAX_IMAGE_PIXELS = 89478485  # PIL's default: refuse above twice this, as torchvision would


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def pack_row(samples, depth):
    if depth == 16:
        return b"".join(struct.pack(">H", s) for s in samples)
    if depth == 8:
        return bytes(samples)
    out, acc, bits = bytearray(), 0, 0
    for s in samples:
        acc = (acc << depth) | s
        bits += depth
        if bits == 8:
            out.append(acc); acc, bits = 0, 0
    if bits:
        out.append(acc << (8 - bits))
    return bytes(out)


def raw_png(w, h, color_type, depth, pixels, interlace=False, plte=None, trns=None, before_idat=b"", after_idat=b"", iend=True):
    """pixels[y][x] is a tuple of samples. Filter type 0 on every row."""
    ch = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]
    if interlace:
        raw = b""
        for (x0, y0, dx, dy) in ADAM7:
            xs, ys = range(x0, w, dx), range(y0, h, dy)
            if not len(xs) or not len(ys):
                continue
            for y in ys:
                raw += b"\x00" + pack_row([s for x in xs for s in pixels[y][x]], depth)
    else:
        raw = b"".join(b"\x00" + pack_row([s for x in range(w) for s in pixels[y][x]], depth) for y in range(h))
    s = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 1 if interlace else 0))
    if plte is not None:
        s += chunk(b"PLTE", bytes(plte))
    if trns is not None:
        s += chunk(b"tRNS", trns)
    s += before_idat + chunk(b"IDAT", zlib.compress(raw)) + after_idat
    return s + (chunk(b"IEND", b"") if iend else b"")


def grid(w, h, ch, top, seed):
    r = random.Random(seed)
    return [[tuple(r.randint(0, top) for _ in range(ch)) for _ in range(w)] for _ in range(h)]


def pil_bytes(im, fmt, **kw):
    b = io.BytesIO(); im.save(b, fmt, **kw); return b.getvalue()


def photo(w, h, mode="RGB", seed=0):
    """A smooth image with texture (JPEG-friendly), in `mode`."""
    r = random.Random(seed)
    px = [(int(128 + 100 * ((x * 7 + y * 3) % 37) / 37 - 50 + r.randint(-20, 20)) % 256,
           (x * 255 // max(1, w - 1)), (y * 255 // max(1, h - 1))) for y in range(h) for x in range(w)]
    im = Image.new("RGB", (w, h)); im.putdata(px)
    return im.convert(mode)


def insert_before_marker(data, marker, junk, after_sos=False):
    """Junk bytes (no 0xFF) inserted just before the first 0xFF `marker` (in the scan data when after_sos)."""
    start = data.index(b"\xff\xda") + 2 if after_sos else 2
    i = data.index(bytes([0xFF, marker]), start)
    return data[:i] + junk + data[i:]


def cjpeg(im, *args):
    with tempfile.TemporaryDirectory() as d:
        ppm = os.path.join(d, "in.ppm"); im.save(ppm)
        return subprocess.run(["cjpeg", *args, ppm], check=True, capture_output=True).stdout


def corpus():
    files = {}
    base = photo(41, 29, seed=1)
    # JPEG as PIL writes it, sampling and progressive variants, odd sizes, greyscale, CMYK.
    files["jpeg-420.jpg"] = pil_bytes(base, "JPEG", quality=90)
    files["jpeg-444.jpg"] = pil_bytes(base, "JPEG", quality=95, subsampling=0)
    files["jpeg-422.jpg"] = pil_bytes(base, "JPEG", quality=85, subsampling=1)
    files["jpeg-progressive.jpg"] = pil_bytes(base, "JPEG", quality=80, progressive=True)
    files["jpeg-optimized.jpg"] = pil_bytes(base, "JPEG", quality=75, optimize=True)
    files["jpeg-grey.jpg"] = pil_bytes(photo(23, 37, "L", seed=2), "JPEG", quality=90)
    files["jpeg-cmyk.jpg"] = pil_bytes(photo(26, 22, "CMYK", seed=3), "JPEG", quality=90)
    files["jpeg-1x1.jpg"] = pil_bytes(photo(1, 1, seed=4), "JPEG")
    exif = Image.Exif(); exif[0x0112] = 6  # orientation "rotate 90": PIL's loader ignores it
    files["jpeg-exif-icc.jpg"] = pil_bytes(base, "JPEG", exif=exif.tobytes(), icc_profile=b"\x00" * 300)
    files["jpeg-restart.jpg"] = cjpeg(base, "-restart", "1B", "-quality", "90")
    files["jpeg-arithmetic.jpg"] = cjpeg(base, "-arithmetic")
    # libjpeg warnings PIL decodes through: extraneous bytes before DQT, DHT, APPn and RSTn.
    plain = files["jpeg-420.jpg"]
    files["warn-before-dqt.jpg"] = insert_before_marker(plain, 0xDB, b"\x00" * 5)
    files["warn-before-dht.jpg"] = insert_before_marker(plain, 0xC4, b"\x12\x34\x56\x78")
    files["warn-before-app1.jpg"] = insert_before_marker(files["jpeg-exif-icc.jpg"], 0xE1, b"\x01" * 16)
    files["warn-before-rst.jpg"] = insert_before_marker(files["jpeg-restart.jpg"], 0xD0, b"\x00" * 3, after_sos=True)
    # What PIL refuses: truncated, 12-bit, a bomb header, garbage after SOI.
    files["bad-truncated.jpg"] = plain[: len(plain) * 2 // 3]
    sof = plain.index(b"\xff\xc0")
    files["bad-12bit.jpg"] = plain[: sof + 4] + b"\x0c" + plain[sof + 5:]
    files["bad-bomb.jpg"] = plain[: sof + 5] + struct.pack(">HH", 65500, 65500) + plain[sof + 9:]
    files["bad-garbage.jpg"] = b"\xff\xd8\xff" + bytes(random.Random(5).randrange(256) for _ in range(300))

    # PNG as PIL writes it.
    files["png-rgb.png"] = pil_bytes(base, "PNG")
    files["png-rgba.png"] = pil_bytes(photo(19, 21, "RGBA", seed=6), "PNG")
    files["png-l.png"] = pil_bytes(photo(19, 21, "L", seed=7), "PNG")
    files["png-la.png"] = pil_bytes(photo(19, 21, "LA", seed=8), "PNG")
    files["png-1bit.png"] = pil_bytes(photo(27, 19, "1", seed=9), "PNG")
    pal = photo(25, 23, seed=10).convert("P", palette=Image.ADAPTIVE, colors=12)
    files["png-palette.png"] = pil_bytes(pal, "PNG")
    files["png-palette-4bit.png"] = pil_bytes(pal, "PNG", bits=4)
    files["png-palette-trns.png"] = pil_bytes(pal, "PNG", transparency=3)
    i16 = Image.new("I;16", (17, 13)); i16.putdata([(x * 37 + y * 101) % 1200 for y in range(13) for x in range(17)])
    files["png-grey16-pil.png"] = pil_bytes(i16, "PNG")
    # PNG from the raw writer: bit depths and layouts PIL does not write.
    files["raw-grey16.png"] = raw_png(21, 17, 0, 16, grid(21, 17, 1, 400, 11))
    files["raw-grey16-trns.png"] = raw_png(21, 17, 0, 16, grid(21, 17, 1, 300, 12), trns=struct.pack(">H", 7))
    files["raw-grey2.png"] = raw_png(22, 17, 0, 2, grid(22, 17, 1, 3, 13))
    files["raw-grey4.png"] = raw_png(23, 17, 0, 4, grid(23, 17, 1, 15, 14))
    files["raw-grey1.png"] = raw_png(21, 17, 0, 1, grid(21, 17, 1, 1, 15))
    files["raw-rgb16.png"] = raw_png(21, 17, 2, 16, grid(21, 17, 3, 65535, 16))
    files["raw-rgba16.png"] = raw_png(21, 17, 6, 16, grid(21, 17, 4, 65535, 17))
    files["raw-la16.png"] = raw_png(21, 17, 4, 16, grid(21, 17, 2, 65535, 18))
    files["raw-la8.png"] = raw_png(21, 17, 4, 8, grid(21, 17, 2, 255, 19))
    files["raw-rgb-trns.png"] = raw_png(21, 17, 2, 8, grid(21, 17, 3, 255, 20), trns=struct.pack(">HHH", 1, 2, 3))
    palette = [v for i in range(6) for v in (40 * i, 255 - 30 * i, (70 * i) % 256)]
    files["raw-palette2-oob.png"] = raw_png(21, 17, 3, 2, grid(21, 17, 1, 3, 21), plte=palette[:9])
    files["raw-palette8-oob.png"] = raw_png(21, 17, 3, 8, grid(21, 17, 1, 9, 22), plte=palette)
    files["raw-palette1.png"] = raw_png(21, 17, 3, 1, grid(21, 17, 1, 1, 23), plte=palette[:6])
    for ct, depth, ch, top in [(0, 8, 1, 255), (2, 8, 3, 255), (6, 16, 4, 65535), (0, 4, 1, 15), (3, 4, 1, 5), (4, 8, 2, 255), (0, 16, 1, 999)]:
        files[f"raw-adam7-ct{ct}-{depth}.png"] = raw_png(21, 19, ct, depth, grid(21, 19, ch, top, 30 + ct * 7 + depth),
                                                         interlace=True, plte=palette if ct == 3 else None)
    files["raw-adam7-tiny.png"] = raw_png(3, 2, 2, 8, grid(3, 2, 3, 255, 40), interlace=True)
    small = grid(21, 17, 3, 255, 41)
    files["raw-no-iend.png"] = raw_png(21, 17, 2, 8, small, iend=False)
    files["raw-text-2mb.png"] = raw_png(21, 17, 2, 8, small, before_idat=chunk(b"tEXt", b"k\x00" + b"a" * (2 << 20)))
    files["bad-ztxt-method.png"] = raw_png(21, 17, 2, 8, small, before_idat=chunk(b"zTXt", b"k\x00\x01" + zlib.compress(b"hi")))
    files["bad-ztxt-huge.png"] = raw_png(21, 17, 2, 8, small, before_idat=chunk(b"zTXt", b"k\x00\x00" + zlib.compress(b"a" * (2 << 20))))
    files["bad-itxt-huge.png"] = raw_png(21, 17, 2, 8, small, after_idat=chunk(b"iTXt", b"k\x00\x01\x00en\x00k\x00" + zlib.compress(b"b" * (3 << 20))))
    # PIL reads the byte after the profile name's NUL as the method, which is that NUL: any method passes.
    files["raw-iccp-method.png"] = raw_png(21, 17, 2, 8, small, before_idat=chunk(b"iCCP", b"p\x00\x05" + zlib.compress(b"\x00" * 50)))
    bad_crc = bytearray(chunk(b"tEXt", b"k\x00v")); bad_crc[-1] ^= 1
    files["bad-text-crc.png"] = raw_png(21, 17, 2, 8, small, before_idat=bytes(bad_crc))
    good = raw_png(21, 17, 2, 8, small)
    files["bad-truncated.png"] = good[: len(good) // 2]
    files["bad-iccp-huge.png"] = raw_png(21, 17, 2, 8, small, before_idat=chunk(b"iCCP", b"p\x00\x00" + zlib.compress(b"\x00" * (2 << 20))))
    files["bad-bomb.png"] = good[:16] + struct.pack(">II", 60000, 60000) + good[24:]
    return files


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--eval-size", type=int, default=16)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    S = args.eval_size
    manifest = []
    for name, data in sorted(corpus().items()):
        path = os.path.join(args.out, name)
        with open(path, "wb") as f:
            f.write(data)
        entry = {"file": name}
        try:
            with Image.open(path) as im:
                entry["mode"] = im.mode
                rgb = im.convert("RGB")
        except Exception as e:  # what PIL refuses, torchvision's loader refuses
            entry["pil"] = f"refused: {type(e).__name__}: {e}"
            manifest.append(entry)
            continue
        entry.update(pil="ok", width=rgb.width, height=rgb.height)
        with open(path + ".rgb", "wb") as f:
            f.write(rgb.tobytes())
        w, h = rgb.size
        short = int(S * 256 / 224)
        size = (short, int(short * h / w)) if w <= h else (int(short * w / h), short)
        r = rgb.resize(size, Image.BICUBIC)
        left, top = int(round((size[0] - S) / 2.0)), int(round((size[1] - S) / 2.0))
        with open(path + ".eval.rgb", "wb") as f:
            f.write(r.crop((left, top, left + S, top + S)).tobytes())
        manifest.append(entry)
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump({"pillow": Image.__version__, "eval_size": S, "files": manifest}, f, indent=1)
    print(f"{len(manifest)} files in {args.out} ({sum(e['pil'] == 'ok' for e in manifest)} decoded by PIL {Image.__version__})")


if __name__ == "__main__":
    sys.exit(main())
