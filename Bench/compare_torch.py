#!/usr/bin/env python3
"""Runs the shapes of a `vkprobe-bench ... --json FILE` run through the peer and prints our time
over theirs, side by side.

The peer is PyTorch when importable (on CUDA when `--torch-device cuda` and available), else
NumPy (OpenBLAS/MKL sgemm and vectorised ops) labelled as such. Times are medians of `--repeats`
runs after warm-up (CUDA: events; CPU: perf_counter).

usage: compare_torch.py RESULTS.json [--torch-device cpu|cuda] [--repeats N] [--json OUT]
       compare_torch.py --serve [--torch-device cpu|cuda] [--upstream DIR]

--serve times cases on request (vkprobe-bench heads does so after each of its own measurements):
one JSON line per request on stdin, {"op", "shape", "repeats"}, one answer per line on stdout,
{"ms"} or {"error"}, after a first line {"label"} (or {"error"} when PyTorch is not importable).
"""
import argparse
import json
import os
import statistics
import sys
import time


def peer_name():
    try:
        import torch  # noqa: F401
        return "torch"
    except ImportError:
        try:
            import numpy  # noqa: F401
            return "numpy"
        except ImportError:
            return None


def torch_cases(device):
    import torch
    import torch.nn.functional as F
    dev = torch.device(device)

    def r(*shape):
        return torch.rand(*shape, device=dev) - 0.5

    def gemm(M, N, K):
        x, w = r(M, K), r(N, K)
        return lambda: x @ w.T

    def gemm_batched(B, M, N, K):
        a, b = r(B, M, K), r(B, K, N)
        return lambda: torch.bmm(a, b)

    def gemm_nn(M, N, K):
        dy, w = r(M, K), r(K, N)
        return lambda: dy @ w

    def gemm_tn(M, N, K):
        dy, x = r(K, M), r(K, N)
        return lambda: dy.T @ x

    def transpose(rows, cols):
        x = r(cols, rows)
        return lambda: x.T.contiguous()

    def broadcast_tokens(B, N, D):
        x = r(B, 1, D)
        return lambda: x.expand(B, N, D).contiguous()

    def broadcast_channels(B, N, D):
        x = r(B, N, 1)
        return lambda: x.expand(B, N, D).contiguous()

    def add(B, N, D):
        x, y, z = r(B, N, D), r(B, N, D), r(B, N, D)
        return lambda: torch.add(x, y, out=z)

    def add_bias(B, N, D):
        x, y, z = r(B, N, D), r(D), r(B, N, D)
        return lambda: torch.add(x, y, out=z)

    def mean_tokens(B, N, D):
        x, y = r(B, N, D), r(B, D)
        return lambda: torch.mean(x, 1, out=y)

    def softmax(rows, cols):
        x = r(rows, cols)
        return lambda: torch.softmax(x, -1)

    def layernorm(rows, cols):
        x, g, b = r(rows, cols), r(cols), r(cols)
        return lambda: F.layer_norm(x, (cols,), g, b, 1e-6)

    def gelu(n):
        x = r(n)
        return lambda: F.gelu(x)

    def attention(B, H, L, D):
        q, k, v = r(B, H, L, D), r(B, H, L, D), r(B, H, L, D)
        return lambda: F.scaled_dot_product_attention(q, k, v)

    def cross_entropy(rows, C):
        x = r(rows, C).requires_grad_()
        y = torch.arange(rows, device=dev) % C

        def run():
            x.grad = None
            F.cross_entropy(x, y).backward()
        return run

    def lars(n):
        p, g, m = r(n), r(n), r(n)

        def run():
            pn, dn = torch.norm(p), torch.norm(g)
            q = torch.where(pn > 0, torch.where(dn > 0, 0.001 * pn / dn, torch.ones_like(pn)), torch.ones_like(pn))
            m.mul_(0.9).add_(g * q)
            p.add_(m, alpha=-0.1)
        return run

    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    return dict(gemm=gemm, gemm_batched=gemm_batched, gemm_nn=gemm_nn, gemm_tn=gemm_tn, transpose=transpose, broadcast_tokens=broadcast_tokens, broadcast_channels=broadcast_channels, add=add, add_bias=add_bias, mean_tokens=mean_tokens, softmax=softmax, layernorm=layernorm, gelu=gelu,
                attention=attention, cross_entropy=cross_entropy, lars=lars), sync, f"torch {torch.__version__} ({device})"


def numpy_cases():
    import numpy as np
    from math import sqrt
    rng = np.random.default_rng(0)

    def r(*shape):
        return (rng.random(shape, dtype=np.float32) - 0.5)

    def gemm(M, N, K):
        x, w = r(M, K), r(N, K)
        return lambda: x @ w.T

    def gemm_batched(B, M, N, K):
        a, b = r(B, M, K), r(B, K, N)
        return lambda: np.matmul(a, b)

    def gemm_nn(M, N, K):
        dy, w = r(M, K), r(K, N)
        return lambda: dy @ w

    def gemm_tn(M, N, K):
        dy, x = r(K, M), r(K, N)
        return lambda: dy.T @ x

    def softmax(rows, cols):
        x = r(rows, cols)

        def run():
            e = np.exp(x - x.max(-1, keepdims=True))
            return e / e.sum(-1, keepdims=True)
        return run

    def layernorm(rows, cols):
        x, g, b = r(rows, cols), r(cols), r(cols)

        def run():
            m = x.mean(-1, keepdims=True)
            v = ((x - m) ** 2).mean(-1, keepdims=True)
            return (x - m) / np.sqrt(v + 1e-6) * g + b
        return run

    def transpose(rows, cols):
        x = r(cols, rows)
        return lambda: np.ascontiguousarray(x.T)

    def broadcast_tokens(B, N, D):
        x = r(B, 1, D)
        return lambda: np.ascontiguousarray(np.broadcast_to(x, (B, N, D)))

    def broadcast_channels(B, N, D):
        x = r(B, N, 1)
        return lambda: np.ascontiguousarray(np.broadcast_to(x, (B, N, D)))

    def add(B, N, D):
        x, y, z = r(B, N, D), r(B, N, D), r(B, N, D)
        return lambda: np.add(x, y, out=z)

    def add_bias(B, N, D):
        x, y, z = r(B, N, D), r(D), r(B, N, D)
        return lambda: np.add(x, y, out=z)

    def mean_tokens(B, N, D):
        x, y = r(B, N, D), r(B, D)
        return lambda: np.mean(x, 1, out=y)

    def gelu(n):
        x = r(n)
        return lambda: 0.5 * x * (1 + np.tanh(0.7978845608 * (x + 0.044715 * x ** 3)))

    def attention(B, H, L, D):
        q, k, v = r(B, H, L, D), r(B, H, L, D), r(B, H, L, D)

        def run():
            s = np.matmul(q, np.swapaxes(k, -1, -2)) / sqrt(D)
            e = np.exp(s - s.max(-1, keepdims=True))
            return np.matmul(e / e.sum(-1, keepdims=True), v)
        return run

    def cross_entropy(rows, C):
        x = r(rows, C)
        y = np.arange(rows) % C

        def run():
            m = x.max(-1, keepdims=True)
            e = np.exp(x - m)
            s = e.sum(-1, keepdims=True)
            loss = (np.log(s[:, 0]) + m[:, 0] - x[np.arange(rows), y]).mean()
            g = e / s
            g[np.arange(rows), y] -= 1
            return loss, g / rows
        return run

    def lars(n):
        p, g, m = r(n), r(n), r(n)

        def run():
            pn, dn = np.linalg.norm(p), np.linalg.norm(g)
            q = 0.001 * pn / dn if pn > 0 and dn > 0 else 1.0
            m[:] = 0.9 * m + g * q
            p[:] = p - 0.1 * m
        return run

    return dict(gemm=gemm, gemm_batched=gemm_batched, gemm_nn=gemm_nn, gemm_tn=gemm_tn, transpose=transpose, broadcast_tokens=broadcast_tokens, broadcast_channels=broadcast_channels, add=add, add_bias=add_bias, mean_tokens=mean_tokens, softmax=softmax, layernorm=layernorm, gelu=gelu,
                attention=attention, cross_entropy=cross_entropy, lars=lars), (lambda: None), f"numpy {np.__version__} (CPU; PyTorch not importable)"


def upstream_head_cases(device, upstream):
    """Training steps of the upstream PyTorch heads (pooling -> BatchNorm1d -> Linear, cross-entropy,
    backward), imported from an efficient-probing checkout."""
    import os
    import types
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    if not upstream or not os.path.isdir(os.path.join(upstream, "poolings")):
        return {}
    sys.path.insert(0, upstream)
    from probe_heads import POOLINGS  # the upstream table of pooling factories
    from poolings.clip.attention_pool2d import AttentionPool2d
    dev = torch.device(device)
    # Harness adaptations, the upstream code untouched: on a CPU-only machine simpool/esimpool
    # create tensors with device='cuda' and other_pool calls .cuda(), so both are redirected to
    # the CPU while a head is built and run; clip's factory fixes its position table at 14×14
    # (197 tokens), so the same AttentionPool2d is built for the benchmark's grid instead.
    if dev.type == "cpu":
        from upstream_cpu import keep_upstream_on_cpu
        keep_upstream_on_cpu(torch)

    def make(name):
        def case(B, N, D, C):
            args = types.SimpleNamespace(num_heads=16, ep_queries=32, d_out=1, nb_classes=C, model="vit_base",
                                         abmilp_sa="both", abmilp_act="tanh", abmilp_depth=2, abmilp_cond="none",
                                         abmilp_content="all")
            model = types.SimpleNamespace(patch_embed=types.SimpleNamespace(num_patches=N))
            if name in ("lp", "lp_cls"):      # BatchNorm + Linear on (B, D) features ([CLS])
                head = nn.Sequential(nn.BatchNorm1d(D, affine=False, eps=1e-6), nn.Linear(D, C)).to(dev)
                x = torch.rand(B, D, device=dev)
            elif name == "lp_gap":            # the mean of the tokens, then BatchNorm + Linear
                class Mean(nn.Module):
                    def forward(self, t):
                        return t.mean(dim=1)
                head = nn.Sequential(Mean(), nn.BatchNorm1d(D, affine=False, eps=1e-6), nn.Linear(D, C)).to(dev)
                x = torch.rand(B, N, D, device=dev)
            else:
                side = int(round(N ** 0.5))
                pooling = AttentionPool2d(in_features=D, feat_size=side) if name == "clip" else POOLINGS[name][0](D, args, model)
                head = nn.Sequential(pooling, nn.BatchNorm1d(D, affine=False, eps=1e-6), nn.Linear(D, C)).to(dev)
                x = torch.rand(B, N, D, device=dev)
            y = torch.arange(B, device=dev) % C
            head.train()

            def run():
                head.zero_grad(set_to_none=True)
                F.cross_entropy(head(x), y).backward()
            return run
        return case
    return {f"head:{name}": make(name) for name in list(POOLINGS) + ["lp", "lp_cls", "lp_gap"]}


def backbone_cases(device, names=("vit_small_patch16_224", "vit_base_patch16_224", "vit_large_patch16_224")):
    """The frozen forward (`forward_features`) of each timm model named (random weights, eval,
    no_grad; autocast fp16 on CUDA)."""
    import torch
    try:
        import timm
    except ImportError:
        return {}
    dev = torch.device(device)
    models = {}

    def make(name):
        def case(B, C, H, W):
            if name not in models:
                # Dynamic-size models (DINOv3) take no img_size; every other family is built at the input size.
                kw = {} if "dinov3" in name else dict(img_size=H)
                models[name] = timm.create_model(name, pretrained=False, num_classes=0, **kw).to(dev).eval()
            m = models[name]
            x = torch.randn(B, C, H, W, device=dev)

            def run():
                with torch.no_grad(), torch.autocast(dev.type, dtype=torch.float16, enabled=dev.type == "cuda"):
                    return m.forward_features(x)
            return run
        return case
    return {f"backbone:{n}": make(n) for n in names}


def backbone_train_cases(device, names, variants):
    """A fine-tuning step of each timm model: forward_features, the backward of Σ out·c (c fixed,
    as the Swift side's gradient at the tokens) into the trained part, torch.optim.SGD (momentum
    0.9). `variants` maps a name to its VulkanProbe variant (`finetune-all`, `finetune-2`,
    `-ckpt` with timm's grad checkpointing), which decides what requires a gradient."""
    import torch
    try:
        import timm
    except ImportError:
        return {}
    dev = torch.device(device)

    def make(name):
        def case(B, C, H, W):
            kw = {} if "dinov3" in name else dict(img_size=H)
            m = timm.create_model(name, pretrained=False, num_classes=0, **kw).to(dev).train()
            variant = variants[name]
            scope = variant.split("-")[1]
            if scope != "all":
                k = int(scope)
                for p in m.parameters():
                    p.requires_grad_(False)
                for blk in m.blocks[len(m.blocks) - k:]:
                    for p in blk.parameters():
                        p.requires_grad_(True)
                for p in m.norm.parameters():
                    p.requires_grad_(True)
            if variant.endswith("-ckpt"):
                m.set_grad_checkpointing(True)
            params = [p for p in m.parameters() if p.requires_grad]
            opt = torch.optim.SGD(params, lr=1e-4, momentum=0.9)
            x = torch.randn(B, C, H, W, device=dev)
            c = None

            def run():
                nonlocal c
                opt.zero_grad(set_to_none=True)
                out = m.forward_features(x)
                if c is None:
                    c = torch.full_like(out, 1e-3)
                (out * c).sum().backward()
                opt.step()
            return run
        return case
    return {f"backbone-train:{n}": make(n) for n in names}


def pipeline_peer(args, records):
    """torchvision's ImageFolder + DataLoader (PIL decode, upstream's transforms, ToTensor +
    Normalize) with the same workers, and the extract path through timm, on the same images."""
    import torch
    import torchvision.transforms as T
    from torchvision.datasets import ImageFolder
    norm = T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    S = args.size
    tfs = {"decode+eval": T.Compose([T.Resize(int(S * 256 / 224), interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(S), T.ToTensor(), norm]),
           "decode+train": T.Compose([T.RandomResizedCrop(S, interpolation=T.InterpolationMode.BICUBIC), T.RandomHorizontalFlip(), T.ToTensor(), norm])}

    def passes(loader, body=lambda x: None):
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            for x, _ in loader:
                body(x)
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    rates = {}
    n = None
    for name, tf in tfs.items():
        ds = ImageFolder(args.pipeline, transform=tf)
        n = len(ds)
        loader = torch.utils.data.DataLoader(ds, batch_size=args.batch_size, num_workers=args.workers, persistent_workers=args.workers > 0)
        rates[name] = n / passes(loader)
    try:
        import timm
        dev = torch.device(args.torch_device if args.torch_device == "cpu" or torch.cuda.is_available() else "cpu")
        m = timm.create_model(args.model, pretrained=False, num_classes=0, img_size=S).to(dev).eval()
        depth = int(args.block) + 1
        ds = ImageFolder(args.pipeline, transform=tfs["decode+eval"])
        loader = torch.utils.data.DataLoader(ds, batch_size=args.batch_size, num_workers=args.workers, persistent_workers=args.workers > 0)

        def forward(x):
            with torch.no_grad(), torch.autocast(dev.type, dtype=torch.float16, enabled=dev.type == "cuda"):
                t = m._pos_embed(m.patch_embed(x.to(dev)))
                for blk in m.blocks[:depth]:
                    t = blk(t)
                if dev.type == "cuda":
                    torch.cuda.synchronize()
        rates["extract"] = n / passes(loader, forward)
    except ImportError:
        pass
    print(f"\npeer: torchvision {__import__('torchvision').__version__} ImageFolder + DataLoader ({args.workers} workers), torch {torch.__version__}")
    print(f"{'stage':<42} {'ours img/s':>11} {'peer img/s':>11} {'ours/peer':>10}")
    out = []
    for r in records:
        stage = r["op"].split(":", 1)[1]
        key = "extract" if stage.startswith("extract") else stage
        ours = r["images_per_s"]
        peer = rates.get(key)
        if peer is None:
            print(f"{stage:<42} {ours:>11.1f} {'-':>11}")
            continue
        print(f"{stage:<42} {ours:>11.1f} {peer:>11.1f} {ours / peer:>10.2f}")
        out.append(dict(r, peer="torchvision", peer_images_per_s=peer, ours_over_peer=ours / peer))
    if args.json:
        json.dump(out, open(args.json, "w"), indent=2)
    return 0


def median_ms(fn, sync, repeats):
    fn(); sync()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn(); sync()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def serve(args):
    """Answers timing requests (see the module docstring). The upstream code and PyTorch may print:
    everything but the answers goes to stderr."""
    answers = sys.stdout
    sys.stdout = sys.stderr

    def answer(obj):
        answers.write(json.dumps(obj) + "\n")
        answers.flush()
    if peer_name() != "torch":
        answer({"error": "PyTorch is not importable"})
        return 0
    cases, sync, label = torch_cases(args.torch_device)
    cases.update(upstream_head_cases(args.torch_device, args.upstream))
    answer({"label": label})
    built = {}   # each case built once (a head's parameters and inputs), timed on every request
    for line in sys.stdin:
        req = json.loads(line)
        key = (req["op"], tuple(req["shape"]))
        try:
            if key not in built:
                make = cases.get(req["op"])
                if make is None and req["op"].startswith("backbone:"):
                    cases.update(backbone_cases(args.torch_device, [req["op"].split(":", 1)[1]]))
                    make = cases.get(req["op"])
                if make is None:
                    why = ""
                    if req["op"].startswith("head:"):
                        why = " (pass --upstream DIR)" if not args.upstream else " (upstream has no module for this head: ours only)"
                    raise LookupError(f"no peer case for {req['op']}{why}")
                built[key] = make(*req["shape"])
            answer({"ms": median_ms(built[key], sync, int(req.get("repeats", args.repeats)))})
        except Exception as e:  # a case the peer cannot run is reported, not fatal
            answer({"error": f"{type(e).__name__}: {e}"})
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results", nargs="?")
    ap.add_argument("--serve", action="store_true", help="time cases on request (stdin/stdout JSON lines)")
    ap.add_argument("--torch-device", default="cpu")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json")
    ap.add_argument("--upstream", default=os.environ.get("EP_UPSTREAM"),
                    help="efficient-probing checkout whose heads are timed for head:* records (else $EP_UPSTREAM)")
    ap.add_argument("--pipeline", help="an ImageFolder: time torchvision's loading pipeline on it (vkprobe-bench pipeline)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--model", default="vit_small_patch16_224")
    ap.add_argument("--block", default="11")
    args = ap.parse_args()
    if args.serve:
        return serve(args)
    if not args.results:
        ap.error("RESULTS.json is required unless --serve")
    records = json.load(open(args.results))
    if args.pipeline:
        return pipeline_peer(args, records)
    peer = peer_name()
    if peer is None:
        print("compare_torch: neither PyTorch nor NumPy is importable; nothing to compare", file=sys.stderr)
        return 0
    if peer == "torch":
        cases, sync, label = torch_cases(args.torch_device)
        heads = upstream_head_cases(args.torch_device, args.upstream)
        cases.update(heads)
        cases.update(backbone_cases(args.torch_device, sorted({r["op"].split(":", 1)[1] for r in records if r["op"].startswith("backbone:")})))
        train = {r["op"].split(":", 1)[1]: r["variant"] for r in records if r["op"].startswith("backbone-train:")}
        cases.update(backbone_train_cases(args.torch_device, sorted(train), train))
        if any(r["op"].startswith("head:") for r in records) and not heads:
            print("(head records: pass --upstream DIR or set EP_UPSTREAM to an efficient-probing checkout to time the upstream heads)")
    else:
        cases, sync, label = numpy_cases()
        if any(r["op"].startswith("head:") for r in records):
            print("(head records: PyTorch is not importable, so the upstream heads cannot be timed here)")
    print(f"\npeer: {label}")
    header = f"{'op':<14} {'shape':<16} {'dtype':<5} {'ours ms':>10} {'peer ms':>10} {'ours/peer':>10} {'ours GFLOP/s':>13} {'peer GFLOP/s':>13}"
    print(header)
    print("-" * len(header))
    out = []
    for r in records:
        make = cases.get(r["op"])
        if make is None or (r["dtype"] != "f32" and not r["op"].startswith("backbone")):
            continue
        try:
            peer_ms = median_ms(make(*r["shape"]), sync, args.repeats)
        except Exception as e:  # a shape the peer cannot run (memory) is reported, not fatal
            print(f"{r['op']:<14} {'x'.join(map(str, r['shape'])):<16} peer failed: {e}")
            continue
        flops = r["gflops"] * r["median_ms"] * 1e6
        peer_gflops = flops / (peer_ms * 1e6) if peer_ms > 0 else float("nan")
        ratio = r["median_ms"] / peer_ms if peer_ms > 0 else float("nan")
        print(f"{r['op']:<14} {'x'.join(map(str, r['shape'])):<16} {r['dtype']:<5} {r['median_ms']:>10.3f} {peer_ms:>10.3f} "
              f"{ratio:>10.2f} {r['gflops']:>13.2f} {peer_gflops:>13.2f}")
        out.append(dict(r, peer=label, peer_ms=peer_ms, peer_gflops=peer_gflops, ours_over_peer=ratio))
    if args.json:
        json.dump(out, open(args.json, "w"), indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
