#!/usr/bin/env python3
"""The ceiling of the CPU GEMM's inner loop as lavapipe 22.3 compiles it, measured in C on this CPU.

lavapipe's JIT code for the float4-along-K path (read with perf and gdb, docs/PERFORMANCE-HISTORY.md)
visits each accumulator once per two texels: it loads the accumulator from the stack, multiplies
eight A values (stack operands) by eight B values (registers) and adds them in one chain (lavapipe
lowers fma to a multiply and an add), reloads the loop's lane mask from the stack, blends and
stores. This program writes that visit sequence as C intrinsics (no FMA instructions: -mno-fma),
compiles it with gcc and times one core, with and without the two costs lavapipe adds around the
arithmetic (the mask kept in memory, B reloaded per column after the texel-fetch calls), so that
the GEMM's GFLOP/s can be read against what its own instruction mix allows here.

    python3 Bench/tools/gemm_visit_ceiling.py [--rows 16 --cols 16] [--json FILE]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def kernel(name, rows, cols, mask_in_memory, reload_b):
    """One K step of a rows × cols tile (per lane), two float4 texels per visit."""
    out = [f"void {name}(float* acc, const float* A, const float* B, const int* mask, long iters) {{",
           "  for (long it = 0; it < iters; ++it) {",
           "    __m256 m = _mm256_castsi256_ps(_mm256_load_si256((const __m256i*)mask));",
           "    __m256 b[8];",
           "    for (int t = 0; t < 8; ++t) b[t] = _mm256_load_ps(B + 8 * t);"]
    for c in range(cols):
        if reload_b:
            out.append(f"    for (int t = 0; t < 8; ++t) b[t] = _mm256_load_ps(B + 8 * ((t + {c}) & 63));")
        for r in range(rows):
            slot = 8 * (r * cols + c)
            out.append(f"    {{ __m256 s = _mm256_load_ps(acc + {slot}), old = s;")
            for t in range(8):
                out.append(f"      s = _mm256_add_ps(s, _mm256_mul_ps(_mm256_load_ps(A + {8 * (r * 8 + t)}), b[{t}]));")
            mk = "_mm256_castsi256_ps(_mm256_load_si256((const __m256i*)mask))" if mask_in_memory else "m"
            out.append(f"      _mm256_store_ps(acc + {slot}, _mm256_blendv_ps(old, s, {mk}));")
            # In memory means reloaded: the compiler may not keep it across the store.
            out.append("      __asm__ volatile(\"\" ::: \"memory\"); }" if mask_in_memory else "    }")
    out.append("    __asm__ volatile(\"\" ::: \"memory\");")
    out.append("  }")
    out.append("}")
    return "\n".join(out)


MAIN = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
typedef void (*Kernel)(float*, const float*, const float*, const int*, long);
int main(void) {
  float *acc = aligned_alloc(64, ROWS * COLS * 32), *A = aligned_alloc(64, ROWS * 8 * 32), *B = aligned_alloc(64, 64 * 32);
  int *mask = aligned_alloc(64, 64);
  for (int i = 0; i < ROWS * COLS * 8; ++i) acc[i] = 0;
  for (int i = 0; i < ROWS * 64; ++i) A[i] = 1e-3f;
  for (int i = 0; i < 512; ++i) B[i] = 1e-3f;
  for (int i = 0; i < 8; ++i) mask[i] = -1;
  Kernel k[4] = {registers, mask_memory, reload_b, both};
  const char *names[4] = {"registers", "mask_memory", "reload_b", "both"};
  long iters = 200000000L / (ROWS * COLS);
  printf("[");
  for (int i = 0; i < 4; ++i) {
    double best = 1e30;
    for (int rep = 0; rep < 3; ++rep) { double t0 = now(); k[i](acc, A, B, mask, iters); double t = now() - t0; if (t < best) best = t; }
    double visits = (double)iters * ROWS * COLS;
    printf("%s{\"variant\": \"%s\", \"ns_per_visit\": %.3f, \"gflops_per_core\": %.1f}", i ? ", " : "", names[i],
           best / visits * 1e9, visits * 128.0 / best / 1e9);
  }
  printf("]\n");
  return acc[1] == 12345.0f;
}
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=16, help="rows per lane (the tile's)")
    parser.add_argument("--cols", type=int, default=16, help="columns per workgroup")
    parser.add_argument("--json", help="also write the records here")
    args = parser.parse_args()
    source = "#include <immintrin.h>\n" + f"#define ROWS {args.rows}\n#define COLS {args.cols}\n"
    source += "\n".join([kernel("registers", args.rows, args.cols, False, False),
                         kernel("mask_memory", args.rows, args.cols, True, False),
                         kernel("reload_b", args.rows, args.cols, False, True),
                         kernel("both", args.rows, args.cols, True, True)]) + MAIN
    with tempfile.TemporaryDirectory() as tmp:
        c_file, binary = os.path.join(tmp, "visit.c"), os.path.join(tmp, "visit")
        with open(c_file, "w") as f:
            f.write(source)
        try:
            subprocess.run(["gcc", "-O2", "-mavx2", "-mno-fma", c_file, "-o", binary], check=True)
        except (OSError, subprocess.CalledProcessError) as error:
            sys.exit(f"gemm_visit_ceiling: could not compile with gcc -mavx2 ({error}); install gcc")
        records = json.loads(subprocess.run([binary], check=True, capture_output=True, text=True).stdout)
    print(f"accumulator visits of a {args.rows} × {args.cols} tile, 8 lanes × 8 multiply-adds each, one core:")
    print(f"{'variant':<12} {'ns/visit':>9} {'GFLOP/s/core':>13}")
    for r in records:
        print(f"{r['variant']:<12} {r['ns_per_visit']:>9.2f} {r['gflops_per_core']:>13.1f}")
    if args.json:
        cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "unknown")
        meta = {"cpu": cpu, "date": time.strftime("%Y-%m-%d"), "compiler": "gcc -O2 -mavx2 -mno-fma", "unit": "one core",
                "visit": "8 lanes x 8 multiply-adds (two float4 texels), accumulator in memory"}
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "rows": args.rows, "cols": args.cols, "records": records}, f, indent=1)


if __name__ == "__main__":
    main()
