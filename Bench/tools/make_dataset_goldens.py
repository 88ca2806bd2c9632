#!/usr/bin/env python3
"""Writes Tests/Goldens/datasets/stl10.safetensors: a miniature STL-10 in torchvision's binary layout
(stl10_binary/{train,test}_X.bin, _y.bin, class_names.txt; random pixels, 3 train and 2 test
images) and what torchvision's own `datasets.STL10` reads from it (upstream's `--dataset_name
stl10`): the images as PIL hands them to the transforms (H, W, 3 uint8) and the labels. The real
files' MD5 check is bypassed for the miniature (`_check_integrity`), nothing else.

    /tmp/refenv/bin/python Bench/tools/make_dataset_goldens.py
"""
import os
import tempfile

import numpy as np
import torchvision
from safetensors.numpy import save_file


def main():
    rng = np.random.default_rng(5)
    t = {}
    with tempfile.TemporaryDirectory() as root:
        d = os.path.join(root, "stl10_binary")
        os.makedirs(d)
        names = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]
        open(os.path.join(d, "class_names.txt"), "w").write("\n".join(names) + "\n")
        for split, n in [("train", 3), ("test", 2)]:
            x = rng.integers(0, 256, size=(n, 3, 96, 96), dtype=np.uint8)
            y = rng.integers(1, 11, size=(n,), dtype=np.uint8)
            x.tofile(os.path.join(d, f"{split}_X.bin"))
            y.tofile(os.path.join(d, f"{split}_y.bin"))
            t[f"file.{split}_X.bin"] = np.frombuffer(open(os.path.join(d, f"{split}_X.bin"), "rb").read(), dtype=np.uint8).copy()
            t[f"file.{split}_y.bin"] = y.copy()
        t["file.class_names.txt"] = np.frombuffer(open(os.path.join(d, "class_names.txt"), "rb").read(), dtype=np.uint8).copy()
        torchvision.datasets.STL10._check_integrity = lambda self: True
        for split in ["train", "test"]:
            ds = torchvision.datasets.STL10(root, split=split, download=False)
            t[f"expected.{split}.images"] = np.stack([np.asarray(ds[i][0]) for i in range(len(ds))])
            t[f"expected.{split}.labels"] = np.array([ds[i][1] for i in range(len(ds))], dtype=np.int64)
            assert ds.classes == names
    out = "Tests/Goldens/datasets/stl10.safetensors"
    save_file(t, out, metadata={"torchvision": torchvision.__version__, "source": "Bench/tools/make_dataset_goldens.py"})
    print(out, {k: v.shape for k, v in t.items()})


if __name__ == "__main__":
    main()
