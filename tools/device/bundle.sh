#!/usr/bin/env bash
# Prepares .device/ (git-ignored) for a GPU machine that has no Swift toolchain and no network:
# static release binaries with their shader bundle, the .debs of the shared libraries they load,
# and upstream's head modules for the PyTorch peer. Then tools/device/run.sh runs there.
#   tools/device/bundle.sh [EFFICIENT_PROBING_CHECKOUT]     (default: ../efficient-probing, $EP_UPSTREAM)
set -euo pipefail
cd "$(dirname "$0")/../.."
upstream=${1:-${EP_UPSTREAM:-../efficient-probing}}
export PATH="/opt/swift/usr/bin:$PATH"

for product in vkprobe vkprobe-bench; do
    # Without FoundationNetworking (which does not link statically; the GPU machine has no network):
    # the hub download says so and reads the cache.
    swift build -c release --static-swift-stdlib -Xswiftc -DVKPROBE_NO_NETWORK --build-path .build-static --product "$product"
done
bin=.build-static/release
rm -rf .device && mkdir -p .device/bin .device/debs .device/upstream
cp -r "$bin/VulkanProbe_ProbeShaders.resources" .device/bin/
# Stripped and xz-compressed (86 → 62 → 16 MB each): what travels is limited to 64 MiB in all.
for b in vkprobe vkprobe-bench; do
    strip -o ".device/bin/$b" "$bin/$b"
    xz -T0 -6 -f ".device/bin/$b"
done

# The shared libraries the binaries load that a bare machine may lack, as Debian packages
# (unpacked there with dpkg -x; the GPU's driver and ICD come from the machine itself).
debs=(libvulkan1 libturbojpeg0 libjpeg62-turbo)
for lib in $(ldd "$bin/vkprobe" "$bin/vkprobe-bench" | awk '/=>/ {print $3}' | sort -u); do
    # dpkg knows a library by the path it installed (/lib or /usr/lib on a merged /usr).
    pkg=$( (dpkg -S "$lib" || dpkg -S "$(readlink -f "$lib")" || dpkg -S "/usr$lib") 2>/dev/null | head -n 1 | cut -d: -f1) || true
    case "$pkg" in ""|libc6|libgcc-s1|libstdc++6) ;; *) debs+=("$pkg") ;; esac
done
mapfile -t debs < <(printf '%s\n' "${debs[@]}" | sort -u)
(cd .device/debs && apt-get download "${debs[@]}")

if [ -f "$upstream/probe_heads.py" ]; then
    tar -C "$upstream" --exclude=.git --exclude=logs -cf - . | tar -C .device/upstream -xf -
else
    echo "no efficient-probing checkout at $upstream: the heads run without the upstream peer" >&2
fi
du -sh .device
echo "packages: ${debs[*]}"
echo "carry .device, then run: tools/device/run.sh"
