#!/usr/bin/env python3
"""Writes head and training goldens in the format of shared/goldens from an upstream
efficient-probing checkout (its poolings, LARS and lr schedule), for other widths, token counts
and seeds than the shared ones: `GoldenTests` reads any directory through PROBE_GOLDENS.

    python3 Bench/tools/make_head_goldens.py --upstream EP_CHECKOUT --out DIR \
        [--dim 96 --tokens 25 --batch 5 --seed 7 --queries 8 --heads 4] [--train]

Needs torch, timm and einops. simpool/esimpool call `.cuda()` upstream: on a CPU-only machine
the harness maps those tensor placements to the CPU (the upstream code is not changed).
"""
import argparse
import json
import math
import os
import sys
import types

import numpy as np


def save(path, tensors, metadata):
    from safetensors.numpy import save_file
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, path, metadata={k: str(v) for k, v in metadata.items()})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--dim", type=int, default=96)
    ap.add_argument("--tokens", type=int, default=25)
    ap.add_argument("--batch", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--queries", type=int, default=8)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--tag", default="h")
    ap.add_argument("--only", default="")
    ap.add_argument("--train", action="store_true", help="also write train_ep / train_lp goldens")
    ap.add_argument("--d-out", type=int, default=1, help="EP's --d_out")
    ap.add_argument("--abmilp-act", default="tanh")
    ap.add_argument("--abmilp-sa", default="both")
    ap.add_argument("--abmilp-depth", type=int, default=2)
    ap.add_argument("--abmilp-cond", default="none")
    ap.add_argument("--abmilp-content", default="all")
    args = ap.parse_args()

    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    if not torch.cuda.is_available():
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
        from upstream_cpu import keep_upstream_on_cpu
        keep_upstream_on_cpu(torch)
    sys.path.insert(0, args.upstream)
    from probe_heads import POOLINGS
    os.makedirs(args.out, exist_ok=True)
    D, N, B = args.dim, args.tokens, args.batch
    names = [n for n in POOLINGS if not args.only or n in args.only.split(",")]
    for name in names:
        torch.manual_seed(args.seed)
        hp = types.SimpleNamespace(num_heads=args.heads, ep_queries=args.queries, d_out=args.d_out, nb_classes=10, model="vit_x",
                                   abmilp_sa=args.abmilp_sa, abmilp_act=args.abmilp_act, abmilp_depth=args.abmilp_depth,
                                   abmilp_cond=args.abmilp_cond, abmilp_content=args.abmilp_content)
        # The backbone's patch count (AB-MILP's position embedding): the tokens less a [CLS] row
        # when the pooling reads all tokens (its `_all` use).
        model = types.SimpleNamespace(patch_embed=types.SimpleNamespace(num_patches=N - 1 if args.abmilp_cond == "pe" else N))
        if name == "clip":
            from poolings.clip.attention_pool2d import AttentionPool2d
            pool = AttentionPool2d(in_features=D, feat_size=int(round(math.sqrt(N))))
        else:
            pool = POOLINGS[name][0](D, hp, model)
        pool = pool.float()
        state0 = {k: v.detach().clone() for k, v in pool.state_dict().items()}
        x = torch.randn(B, N, D)
        dy = torch.randn(B, D)
        pool.train()
        y = pool(x)
        if isinstance(y, tuple):
            y = y[0]
        W = y.shape[-1]   # D, or D / d_out for EP
        dy = dy[:, :W].contiguous()
        y = y.reshape(B, W)
        (y * dy).sum().backward()
        tensors = {f"0.{k}": v.numpy() for k, v in state0.items() if v.dtype.is_floating_point}
        tensors["input.x"] = x.numpy()
        tensors["input.dy"] = dy.numpy()
        tensors["expected.y"] = y.detach().numpy()
        for k, p in pool.named_parameters():
            if p.requires_grad:
                g = p.grad if p.grad is not None else torch.zeros_like(p)
                tensors[f"expected.grad.0.{k}"] = g.numpy()
        for k, v in pool.state_dict().items():
            if k not in dict(pool.named_parameters()) and v.dtype.is_floating_point:
                tensors[f"expected.0.{k}"] = v.numpy()
        pool.eval()
        with torch.no_grad():
            ye = pool(x)
            if isinstance(ye, tuple):
                ye = ye[0]
        tensors["expected.y_eval"] = ye.reshape(B, W).numpy()
        trainable = sum(p.numel() for p in pool.parameters() if p.requires_grad)
        meta = dict(seed=args.seed, dim=D, head=json.dumps(name), tokens=N, queries=args.queries, heads=args.heads,
                    batch=B, trainable_params=trainable, torch=json.dumps(torch.__version__), d_out=args.d_out,
                    abmilp_act=json.dumps(args.abmilp_act), abmilp_sa=json.dumps(args.abmilp_sa), abmilp_depth=args.abmilp_depth,
                    abmilp_cond=json.dumps(args.abmilp_cond), abmilp_content=json.dumps(args.abmilp_content))
        save(os.path.join(args.out, f"{name}_{args.tag}.safetensors"), tensors, meta)
        print("wrote", name)
    if args.train:
        from util.lars import LARS
        import util.lr_sched as lr_sched
        for head in ["ep", "lp"]:
            torch.manual_seed(args.seed)
            S, bs, C, spe, epochs = 4 * B + 2, B + 1, 6, 4.0, 3
            if head == "ep":
                hp = types.SimpleNamespace(ep_queries=args.queries, d_out=1)
                pool = POOLINGS["ep"][0](D, hp, None)
                net = nn.Sequential(pool, nn.BatchNorm1d(D, affine=False, eps=1e-6), nn.Linear(D, C))
            else:
                net = nn.Sequential(nn.BatchNorm1d(D, affine=False, eps=1e-6), nn.Linear(D, C))
            init = {k: v.detach().clone() for k, v in net.state_dict().items() if v.dtype.is_floating_point}
            xs = torch.randn(S, N, D)
            labels = torch.randint(0, C, (S,), dtype=torch.int32)
            ns = types.SimpleNamespace(lr=0.5, min_lr=0.0, warmup_epochs=1, epochs=epochs)
            opt = LARS(net.parameters(), lr=ns.lr, weight_decay=0.0)
            losses, lrs = [], []
            steps = int(spe * epochs)
            net.train()
            for t in range(steps):
                idx = [(t * bs + i) % S for i in range(bs)]
                lrs.append(lr_sched.adjust_learning_rate(opt, t / spe, ns))
                xb = xs[idx]
                feats = xb if head == "ep" else xb.mean(1)
                loss = F.cross_entropy(net(feats), labels[idx].long())
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(loss.item())
            tensors = {k: v.numpy() for k, v in init.items()}
            tensors.update({f"expected.final.{k}": v.numpy() for k, v in net.state_dict().items() if v.dtype.is_floating_point})
            tensors["input.x"] = xs.numpy()
            tensors["input.labels"] = labels.numpy()
            tensors["expected.loss"] = np.array(losses, dtype=np.float32)
            tensors["expected.lr"] = np.array(lrs, dtype=np.float32)
            meta = dict(samples=S, seed=args.seed, dim=D, tokens=N, heads=args.heads, weight_decay=0.0, trust_coefficient=0.001,
                        momentum=0.9, steps_per_epoch=spe, optimizer=json.dumps("lars"), base_lr=ns.lr, steps=steps,
                        queries=args.queries, head=json.dumps(head), epochs=epochs, batch=bs, warmup_epochs=1, classes=C,
                        features=json.dumps("lp: mean over tokens; ep: all tokens"),
                        batch_order=json.dumps("step i uses samples (i*batch .. (i+1)*batch-1) mod samples"))
            save(os.path.join(args.out, f"train_{head}_{args.tag}.safetensors"), tensors, meta)
            print("wrote train", head)


if __name__ == "__main__":
    main()
