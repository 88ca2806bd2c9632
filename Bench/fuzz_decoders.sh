#!/usr/bin/env bash
# A longer run of the JPEG/PNG decoders' fuzz test than `make test` does: CASES mutated files per
# seed (each followed by every good file, which must decode bit-exactly), for SEEDS seeds.
#   Bench/fuzz_decoders.sh [CASES] [SEEDS]
set -euo pipefail
cd "$(dirname "$0")/.."
cases=${1:-200000}
seeds=${2:-4}
for seed in $(seq 1 "$seeds"); do
  echo "seed $seed: $cases mutated files"
  VKPROBE_DECODER_FUZZ_CASES=$cases VKPROBE_DECODER_FUZZ_SEED=$seed swift test --filter aBadFileNeverPoisonsTheNext
done
