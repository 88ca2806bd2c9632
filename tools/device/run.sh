#!/usr/bin/env bash
# Runs on the GPU machine, in the repository root, after tools/device/bundle.sh here (carry .device):
# the device listing, the cooperative-matrix GEMM's first-use check, and the benchmarks against
# PyTorch on the same GPU, each under its own time limit (about 8 minutes in all). Results:
# $OUT/device-results.tgz (or out/device/), to unpack into Bench/results/.
#   tools/device/run.sh [quick]      quick: --quick shapes (a smoke test; also works on lavapipe)
set -uo pipefail
cd "$(dirname "$0")/../.."
# $OUT brings back at most 8 files: the logs and JSON gather in $work, packed into one archive
# after every step (so that a run cut off at its limit still brings back what it finished).
dest=${OUT:-out/device}; work=/tmp/device-results; out=$work
rm -rf "$work"; mkdir -p "$work" "$dest"
quick=${1:-}
# The carried libraries, each only where the machine lacks it (unpacked aside, never over /).
mkdir -p /tmp/device-root /tmp/device-lib
for f in .device/debs/*.deb; do dpkg -x "$f" /tmp/device-root; done
for so in $(find /tmp/device-root -name 'lib*.so.*' \( -type f -o -type l \)); do
    soname=$(basename "$so" | sed -E 's/(\.so\.[0-9]+).*/\1/')
    ldconfig -p | grep -q " $soname " || ln -sf "$so" "/tmp/device-lib/$soname"
done
export LD_LIBRARY_PATH="/tmp/device-lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "carried libraries used: $(ls /tmp/device-lib | tr '\n' ' ')"
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$icd" ] && export VK_DRIVER_FILES=$icd
export VKPROBE_PYTHON=${VKPROBE_PYTHON:-python3} PYTHONUNBUFFERED=1
[ -f .device/upstream/probe_heads.py ] && export EP_UPSTREAM=$PWD/.device/upstream
bin=.device/bin
for b in vkprobe vkprobe-bench; do   # bundle.sh compressed them (python3's lzma: xz may be absent)
    [ -x "$bin/$b" ] || python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$bin/$b.xz" "$bin/$b"
    chmod +x "$bin/$b"
done
name=$($bin/vkprobe devices --json 2>/dev/null | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["devices"][d["chosen"]]["name"])' 2>/dev/null || echo unknown)
tag=$(echo "$name" | tr 'A-Z' 'a-z' | tr -cs 'a-z0-9' '-' | sed 's/^-//; s/-$//')
echo "device: $name (results tagged $tag)"

step() {   # step SECONDS NAME COMMAND...: one benchmark, its log to $out/NAME.log
    local limit=$1 name=$2; shift 2
    echo "== $name (limit ${limit}s)"
    timeout "$limit" "$@" > "$out/$name.log" 2>&1; local rc=$?
    tail -n 40 "$out/$name.log"; echo "== $name: rc $rc"
    tar -czf "$dest/device-results.tgz" -C "$work" .
}
step 30 devices $bin/vkprobe devices
if [ -n "$quick" ]; then
    step 120 kernels $bin/vkprobe-bench kernels --quick --json "$out/$tag-kernels-quick.json"
    step 120 heads $bin/vkprobe-bench heads --quick --rounds 2 --json "$out/$tag-heads-quick.json"
    exit 0
fi
# The kernels' first fp16 GEMM runs the cooperative-matrix kernel's check against the tiled one
# (the log says which GEMM then serves); the heads and backbones after it use that choice.
step 120 kernels $bin/vkprobe-bench kernels --json "$out/$tag-kernels.json"
step 150 heads $bin/vkprobe-bench heads --shape 256,196,768,1000 --rounds 3 --json "$out/$tag-heads-paper-shape.json"
step 60 heads-profile $bin/vkprobe-bench heads --shape 256,196,768,1000 --only ep,lp_cls --no-compare --profile \
    --profile-json "$out/$tag-paper-shape-profile.json"
step 120 backbone $bin/vkprobe-bench backbone --batch-sizes 1,64,256 --json "$out/$tag-backbone.json" \
    --profile --profile-json "$out/$tag-backbone-profile.json"
