#!/bin/sh
# Validates the cooperative-matrix SPIR-V of the last build with the pinned spirv-val (2025.5):
# no CPU driver here runs these kernels, so validation is what `make test` can check.
set -eu
venv=${1:-.venv-shaders}
if [ ! -x "$venv/bin/spirv-val" ]; then
  echo "cooperative-matrix kernels: not built (no $venv; run make shader-tools with network access)"
  exit 0
fi
found=0
for f in $(find .build -path '*ProbeShaders*' -name 'gemm_coopmat*.spv' -newer Shaders/coopmat/gemm_coopmat.comp 2>/dev/null | sort); do
  "$venv/bin/spirv-val" --target-env vulkan1.3 "$f"
  echo "spirv-val --target-env vulkan1.3: $f valid"
  found=$((found + 1))
done
if [ "$found" -eq 0 ]; then
  echo "error: $venv exists but the build produced no gemm_coopmat*.spv" >&2
  exit 1
fi
