#!/usr/bin/env python3
"""Writes Tests/Fixtures/upstream_linprobe_commands.txt: every `main_linprobe.py` command of
upstream's README (github.com/billpsomas/efficient-probing), one per line as a user would paste
it (continuation lines joined), for LinprobeTests: each must be taken by `vkprobe linprobe` or
refused naming what it cannot honour.

    python3 Bench/tools/extract_upstream_commands.py --upstream CHECKOUT [--commit SHA] \
        --out Tests/Fixtures/upstream_linprobe_commands.txt
"""
import argparse
import os
import re
import subprocess


def commands(readme):
    out = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", readme, re.S):
        for line in block.replace("\\\n", " ").split("\n"):
            if "main_linprobe.py" in line:
                out.append(" ".join(line.split()))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--commit", default="")
    ap.add_argument("--out", default="Tests/Fixtures/upstream_linprobe_commands.txt")
    a = ap.parse_args()
    readme = open(os.path.join(a.upstream, "README.md")).read()
    found = commands(readme)
    total = readme.count("main_linprobe.py")
    assert len(found) == total, f"{len(found)} commands found, {total} mentions of main_linprobe.py"
    commit = a.commit or subprocess.run(["git", "-C", a.upstream, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    with open(a.out, "w") as f:
        f.write(f"# every main_linprobe.py command of upstream's README (billpsomas/efficient-probing {commit}), one per line\n")
        f.write("\n".join(found) + "\n")
    print(f"{a.out}: {len(found)} commands")


if __name__ == "__main__":
    main()
