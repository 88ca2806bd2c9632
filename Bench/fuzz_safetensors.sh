#!/usr/bin/env bash
# A longer run of the safetensors reader's fuzz test than `make test` does: ITERATIONS random and
# mutated files per seed, for SEEDS seeds. The reader must return or throw on every one of them.
#   Bench/fuzz_safetensors.sh [ITERATIONS] [SEEDS]
set -euo pipefail
cd "$(dirname "$0")/.."
iterations=${1:-1000000}
seeds=${2:-4}
for seed in $(seq 1 "$seeds"); do
  echo "seed $seed: $iterations files"
  SAFETENSORS_FUZZ_ITERATIONS=$iterations SAFETENSORS_FUZZ_SEED=$seed swift test --filter fuzzedFilesNeverCrashTheReader
done
