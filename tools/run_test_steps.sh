#!/usr/bin/env bash
# `make test`'s steps, each one `swift test` process, run VKPROBE_TEST_JOBS at a time (default 2).
#
# Why processes and not test threads: Debian 12's validation layer (1.3.239) crashed with
# SIGSEGV inside the layer, the heap corrupted, when parallel test threads called into it (seen
# in the main run, in the 16-lane kernel run and in the GPU-selection run). A process per step
# gives each its own layer and keeps one test thread in it, and the steps are independent: each
# width and profile has its own Mesa cache folder (ShaderCacheKey), VKPROBE_CACHE_DIR is empty,
# test folders are per process. Mesa's disk cache is safe across processes.
#
# A test process keeps about one core busy (lavapipe's dispatches are small at test shapes and the
# CPU references are single-threaded), so on 2 cores two steps at a time take about half as long.
#
#   tools/run_test_steps.sh [STEP…]     (no STEP: all; logs in .build/test-logs/)
set -uo pipefail
cd "$(dirname "$0")/.."

SWIFT=${SWIFT:-swift}
JOBS=${VKPROBE_TEST_JOBS:-2}
LOGS=.build/test-logs
SWIFTSHADER_ICD=${SWIFTSHADER_ICD:-/usr/lib/chromium/vk_swiftshader_icd.json}
TENSORBOARD_PYTHON=${TENSORBOARD_PYTHON:-$PWD/.venv-tensorboard/bin/python}
mkdir -p "$LOGS"

CHECKED=(VKPROBE_REQUIRE_VALIDATION=1 VKPROBE_CACHE_DIR=)
MAIN=("${CHECKED[@]}" VKPROBE_REQUIRE_BROWSER=1 VKPROBE_REQUIRE_MPI=1 VKPROBE_REQUIRE_TENSORBOARD=1 VKPROBE_REQUIRE_SCIPY=1
      VKPROBE_REQUIRE_SWIFTSHADER=1 VKPROBE_TENSORBOARD_PYTHON="$TENSORBOARD_PYTHON")
KERNEL_TESTS='ProbeKernelsTests|ShaderRequirementsTests'
GOLDEN_TESTS='GoldenTests|ViTGoldenTests|FamilyGoldenTests|TrainingGoldenTests'
# The leaderboard rows' goldens (32 rows, ~2 min) check the protocol (transforms, statistics, taps,
# projections, loaders) from JPEG files, once, in the main run; the GPU selection, SwiftShader, the
# width and the profile steps run the family goldens (the same kernels, one per architecture) and
# leave the rows out.
ROWS_SKIP='RowGoldenTests'
# Tests that choose their own selection, or whose subject is not the kernels, once (in the main run).
GPU_SKIP="$ROWS_SKIP|KernelSelectionTests/bothSelectionsTrainToTheSameNumbers|DeviceMemoryTests/evaluationLeavesNothingBehind"
# The GEMM plan sweeps (the slowest kernel tests; run cold they are the most code to compile) run at
# the default width in the main step (the f32 one on SwiftShader too), at every width in
# `make test-widths`.
SWEEP_SKIP='GEMMTests/(gemm\(|cpuShapedF16|cpuShapedStorageBuffers|cpuShapedBF16|cpuShapedPacked|cpuShapedKTexels|cpuShapedAlongKTile)|TinyBindingLimitTests/gemm'
WIDTH_SKIP="$SWEEP_SKIP|GEMMTests/cpuShapedF32"
MAIN_SPLIT='ProbeKernelsTests|ProbeBackbonesTests|VKProbeCLITests'

# The test bundle runs directly: `swift test` holds SwiftPM's lock on .build for its whole run,
# so two of them would take turns instead of running side by side. (Built by `make test` first.)
BUNDLE="$("$SWIFT" build --show-bin-path)/VulkanProbePackageTests.xctest"
[ -x "$BUNDLE" ] || { echo "$BUNDLE is missing: run \`$SWIFT build --build-tests\` first"; exit 2; }

# t [VAR=value…] [--filter/--skip arguments…]: one test at a time, as `swift test --no-parallel`.
t() {
    local vars=()
    while [ $# -gt 0 ] && [[ "$1" == [A-Z]*=* ]]; do vars+=("$1"); shift; done
    env NO_COLOR=1 "${vars[@]}" "$BUNDLE" --testing-library swift-testing --no-parallel "$@"
}

# Each step: its commands, in order (a step's commands share nothing with other steps' but may
# depend on one another: the default width runs after the 4- and 16-lane runs on purpose).
step_kernels() { echo "The kernel tests (the GEMM plan sweeps too), default width"
    t "${MAIN[@]}" --filter 'ProbeKernelsTests'; }
step_backbones() { echo "The backbones: every family against timm, fine-tuning gradients"
    t "${MAIN[@]}" --filter 'ProbeBackbonesTests'; }
step_cli() { echo "The command line: extraction, training, k-NN, maps, report, hub, demo, MPI"
    t "${MAIN[@]}" --filter 'VKProbeCLITests'; }
step_rest() { echo "Heads, training, data, device layer, ops, safetensors"
    t "${MAIN[@]}" --skip "$MAIN_SPLIT"; }
step_gpu() {
    echo "Every golden, extraction, training on images, k-NN, the demo, the memory budget and fine-tuning gradients again through a"
    echo "discrete GPU's paths (VKPROBE_KERNELS=gpu: tiled GEMMs, fused attention, 128-lane row kernels, staging copies)"
    t VKPROBE_KERNELS=gpu "${CHECKED[@]}" --skip "$GPU_SKIP" \
        --filter 'GoldenTests|ProtocolTests|FamilyTransformTests|KernelSelectionTests|ExtractionTests|KNNTests|ImageRunTests|DemoTests|DeviceMemoryTests|FineTuneGradientTests/(dinov2RegAll|dinov3All|eva02BaseAll|beitv2All|aimv2All|hieraAll|checkpointing)'; }
step_widths() {
    echo "The kernel tests at lavapipe's other subgroup sizes (4 and 16 lanes), then the default width again: each width has its own"
    echo "Mesa cache folder (SubgroupTests fails on code built for another width); the GEMM sweeps at every width: make test-widths"
    t LP_NATIVE_VECTOR_WIDTH=128 "${CHECKED[@]}" --filter "$KERNEL_TESTS" --skip "$WIDTH_SKIP" &&
    t LP_NATIVE_VECTOR_WIDTH=512 "${CHECKED[@]}" --filter "$KERNEL_TESTS" --skip "$WIDTH_SKIP" &&
    t "${CHECKED[@]}" --filter "SubgroupTests|$GOLDEN_TESTS" --skip "$ROWS_SKIP"; }
step_swiftshader() {
    echo "SwiftShader, a second Vulkan implementation (subgroups of 4, no 16-bit storage, texel views of 65536), default kernel selection"
    t VK_ICD_FILENAMES="$SWIFTSHADER_ICD" VK_DRIVER_FILES="$SWIFTSHADER_ICD" "${CHECKED[@]}" \
        --filter "$KERNEL_TESTS|$GOLDEN_TESTS|DeviceTests" --skip "$SWEEP_SKIP|$ROWS_SKIP"; }
step_profiles() {
    echo "Real GPUs' limits and features laid over lavapipe (Profiles/*.json): the goldens and a training run under each"
    for p in Profiles/*.json; do echo "== $p"
        t VKPROBE_DEVICE_PROFILE="$PWD/$p" "${CHECKED[@]}" --filter "DeviceProfileTests|$GOLDEN_TESTS" --skip "$ROWS_SKIP" || return 1; done; }

# Longest first (warm-cache seconds on 2 cores, two steps at a time, measured 2026-12-07): gpu 600,
# swiftshader 410, cli 320, rest 270, kernels 220, widths 200, backbones 180, profiles 150.
ALL=(gpu swiftshader cli rest kernels widths backbones profiles)
STEPS=("$@"); [ ${#STEPS[@]} -gt 0 ] || STEPS=("${ALL[@]}")

started=$(date +%s)
declare -A pid_of=() began=()
failed=()

report() {  # the step's outcome: its suite summary on success, its failures and log tail otherwise
    local s=$1 rc=$2 secs=$(( $(date +%s) - ${began[$1]} ))
    if [ "$rc" = 0 ]; then
        echo "✔ step $s passed in ${secs} s: $(grep -E '^(✔|✘) Test run with' "$LOGS/$s.log" | sed 's/^. //' | paste -sd';' -)"
    else
        failed+=("$s")
        echo "✘ step $s FAILED (exit $rc) after ${secs} s; its failures and last lines (the whole log: $LOGS/$s.log):"
        grep -E '^✘|error:|Fatal|Signal|signal [0-9]|Crash' "$LOGS/$s.log" | head -60 | sed 's/^/    /'
        tail -25 "$LOGS/$s.log" | sed 's/^/    /'
    fi
}

reap() {  # reports each finished step (bash keeps a reaped child's status for `wait PID`)
    local d
    for d in "${!pid_of[@]}"; do
        if ! kill -0 "${pid_of[$d]}" 2>/dev/null; then wait "${pid_of[$d]}"; report "$d" $?; unset "pid_of[$d]"; fi
    done
}

for s in "${STEPS[@]}"; do
    declare -F "step_$s" >/dev/null || { echo "unknown step $s (steps: ${ALL[*]})"; exit 2; }
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
    reap
    echo "▶ step $s (log $LOGS/$s.log)"
    began[$s]=$(date +%s)
    ( "step_$s" ) > "$LOGS/$s.log" 2>&1 &
    pid_of[$s]=$!
done
while [ ${#pid_of[@]} -gt 0 ]; do wait -n; reap; done

echo "make test: ${#STEPS[@]} steps in $(( $(date +%s) - started )) s, $JOBS at a time; ${#failed[@]} failed${failed:+: ${failed[*]}}"
[ ${#failed[@]} -eq 0 ]
