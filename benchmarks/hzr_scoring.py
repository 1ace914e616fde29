"""Throughput of the HZR scoring step (the tree walk over precomputed embeddings), node-batched vs a
per-sample baseline, on the real MIIL tree; plus a FLOPs estimate of encoding ImageNet-21K-P with
OpenCLIP ViT-bigG-14 on one GPU.

    PYTHONPATH=. python benchmarks/hzr_scoring.py [--n 20000] [--baseline-n 1000] [--dim 1280] [--threads 1] [--encode]

Prints images/s of both implementations side by side (same process, same inputs, results checked
equal on the baseline subset).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def _taxonomy():
    from in21k_bench.errors import In21kError
    from in21k_bench.registry.taxonomy import Taxonomy, load_taxonomy

    try:
        return load_taxonomy()
    except In21kError:
        from in21k_bench.authoring.sources import Sources
        from in21k_bench.authoring.taxonomy_tables import build_taxonomy_tables

        return Taxonomy(build_taxonomy_tables(Sources.locate())["taxonomy/classes"].to_pandas())


def naive_walk(x, start, tree, text, mode):
    """Baseline: one sample at a time, one small matrix-vector product per step."""
    out = np.empty(len(start), np.int64)
    for i, c in enumerate(start):
        c = int(c)
        while not tree.is_leaf[c]:
            cands = np.concatenate([[c], tree.children(c)]) if mode == "p-hzr" else tree.children(c)
            s = (x[i : i + 1] @ text[torch.from_numpy(cands)].T)[0]
            nxt = int(cands[int(torch.argmax(s))])
            if nxt == c:
                break
            c = nxt
        out[i] = c
    return out


def vit_flops_per_image(cfg) -> float:
    """Forward FLOPs (2 x multiply-adds) of an open_clip ViT image tower from its config."""
    v = cfg["vision_cfg"]
    w, layers, p, size = v["width"], v["layers"], v["patch_size"], v["image_size"]
    t = (size // p) ** 2 + 1
    hidden = int(w * v.get("mlp_ratio", 4.0))
    per_layer = 4 * t * w * w + 2 * t * w * hidden + 2 * t * t * w  # qkv+proj, MLP, QK^T and AV
    patch = (t - 1) * 3 * p * p * w
    head = w * cfg["embed_dim"]
    return 2.0 * (layers * per_layer + patch + head)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000, help="samples for the node-batched walk")
    ap.add_argument("--baseline-n", type=int, default=1000, help="samples for the per-sample baseline")
    ap.add_argument("--dim", type=int, default=1280, help="embedding dim (ViT-bigG-14: 1280)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--encode", action="store_true", help="also time ViT-B-32 (random weights) image encoding on CPU")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from in21k_bench.zeroshot.hzr import Tree, walk

    tax = _taxonomy()
    tree = Tree.from_taxonomy(tax)
    rng = np.random.default_rng(0)
    nonleaf = np.flatnonzero(~tree.is_leaf)
    w = tax.train_count[nonleaf].astype(float)
    start = np.sort(rng.choice(nonleaf, size=args.n, p=w / w.sum()))  # canonical order: grouped by class
    x = torch.nn.functional.normalize(torch.randn(args.n, args.dim), dim=1)
    text = torch.nn.functional.normalize(torch.randn(tax.num_classes, args.dim), dim=1)

    def score(rows, node, cands):
        return (x[torch.from_numpy(rows)] @ text[torch.from_numpy(cands)].T).numpy()

    print(
        f"HZR scoring step on CPU ({args.threads} thread(s)), real MIIL tree, D={args.dim}, "
        f"{args.n:,} samples of non-leaf classes (node-batched) vs {args.baseline_n:,} (per-sample)"
    )
    print(f"{'mode':<9} {'node-batched img/s':>19} {'per-sample img/s':>17} {'ratio':>7}  steps/sample")
    for mode in ("leaf-hzr", "p-hzr"):
        t0 = time.perf_counter()
        res = walk(start, tree, score, mode)
        t_batch = time.perf_counter() - t0
        sub = rng.choice(args.n, size=min(args.baseline_n, args.n), replace=False)
        sub.sort()
        t0 = time.perf_counter()
        ref = naive_walk(x[torch.from_numpy(sub)], start[sub], tree, text, mode)
        t_naive = time.perf_counter() - t0
        assert np.array_equal(ref, res.refined[sub]), "node-batched and per-sample walks disagree"
        steps = np.mean([len(p) - 1 for p in res.paths])
        a, b = args.n / t_batch, len(sub) / t_naive
        print(f"{mode:<9} {a:>19,.0f} {b:>17,.0f} {a / b:>6.1f}x  {steps:.2f}")

    import open_clip

    if args.encode:
        from in21k_bench.zeroshot.clip import load_clip

        clip = load_clip("ViT-B-32", None, device="cpu")
        batch = torch.randn(16, 3, 224, 224)
        clip.encode_image_tensor(batch[:2])
        t0 = time.perf_counter()
        clip.encode_image_tensor(batch)
        print(f"\nFor scale: ViT-B-32 image encoding on this CPU: {16 / (time.perf_counter() - t0):.1f} img/s")

    total = 11_060_000 + 522_500  # winter21 train (~11.06 M, docs/benchmarks.md "The data") + val
    print("\nEncoding estimate (FLOPs from the open_clip config; an estimate, not a measurement):")
    for name in ("ViT-bigG-14", "ViT-g-14"):
        f = vit_flops_per_image(open_clip.get_model_config(name))
        tot = f * total
        for gpu, peak in (("A100 bf16 312 TFLOP/s", 312e12), ("H100 SXM bf16 989 TFLOP/s", 989e12)):
            hours = tot / (0.4 * peak) / 3600
            print(
                f"  {name:<12} {f / 1e9:7.0f} GFLOP/img x {total / 1e6:.2f} M img = {tot:.2e} FLOP; {gpu} at 40% "
                f"utilisation: {hours:5.1f} h"
            )


if __name__ == "__main__":
    main()
