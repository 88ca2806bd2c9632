#!/usr/bin/env bash
# Checks a folder of your images against PIL and torchvision in one command: PIL's decoded pixels
# and torchvision's eval transform (Resize(int(S·256/224)) bicubic → CenterCrop(S)) written by
# make_transform_goldens.py, then compared by `vkprobe check-transforms` (exact pixels, the eval
# transform within one 8-bit level, PIL's refusals refused). Needs Pillow (torchvision optional).
#   Bench/tools/check_decoding.sh DIR [SIZE] [LIMIT]
set -euo pipefail
dir=${1:?usage: check_decoding.sh DIR [SIZE] [LIMIT]}
size=${2:-224}
limit=${3:-0}
root="$(cd "$(dirname "$0")/../.." && pwd)"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
python3 "$root/Bench/tools/make_transform_goldens.py" --images "$dir" --out "$out" --size "$size" --limit "$limit" --tag dataset
vkprobe="$root/.build/release/vkprobe"
[ -x "$vkprobe" ] || vkprobe="$root/.build/debug/vkprobe"
[ -x "$vkprobe" ] || { (cd "$root" && swift build -c release --product vkprobe >/dev/null); vkprobe="$root/.build/release/vkprobe"; }
"$vkprobe" check-transforms --quiet "$out/transform_dataset.safetensors"
