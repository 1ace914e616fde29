"""CPU autocast for the head GEMMs: fp32 vs bf16 vs fp16 ``torch.autocast`` on the same training step.

Each variant runs the training step of ``in21k_bench.methods.head_training`` (student forward on anchors +
partners under autocast, teacher forward, TEMI loss in float32, backward, AdamW, EMA) from the SAME
initial weights on the SAME batches, side by side in one process: interleaved rounds (order
alternates), the median round counts. Printed: pairs/s of each variant, the ratio to fp32, and the
largest relative difference of the loss to the fp32 run over the timed steps (quality: a variant is
"equal quality" when that stays <= 1e-2 -- low precision drifts, it cannot match float32 rounding).

    python benchmarks/heads_autocast.py --threads 1              # H=8, D=768, C=1000, 256 pairs
    python benchmarks/heads_autocast.py --threads 1 --dim 64 --clusters 10 --heads 4 --batch 64
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from in21k_bench.methods.heads import BatchedHeads, ema_update, make_teacher  # noqa: E402
from in21k_bench.methods.losses import temi_loss, uniform_prior  # noqa: E402

VARIANTS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def make_step(student: BatchedHeads, dtype):
    teacher = make_teacher(student)
    opt = torch.optim.AdamW(student.param_groups(1e-4), lr=1e-3)
    state = {"prior": uniform_prior(student.num_heads, student.num_clusters)}

    def step(x: torch.Tensor) -> float:
        with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            s = student(x)
            with torch.no_grad():
                t = teacher(x)
        out = temi_loss(s, t, state["prior"])
        state["prior"] = out.state
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
        ema_update(teacher, student, 0.996)
        return out.loss.item()

    return step


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--clusters", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=256, help="pairs per step (rows = 2 x batch)")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--variants", default="fp32,bf16,fp16")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    base = BatchedHeads(args.dim, args.clusters, args.heads, generator=g)
    names = args.variants.split(",")
    steps = {k: make_step(copy.deepcopy(base), VARIANTS[k]) for k in names}
    data = [
        F.normalize(torch.randn(2 * args.batch, args.dim, generator=g), dim=1)
        for _ in range(1 + args.steps * args.rounds)
    ]
    losses = {k: [f(data[0])] for k, f in steps.items()}
    rounds: dict[str, list[float]] = {k: [] for k in steps}
    for r in range(args.rounds):
        for k in names if r % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            for i in range(args.steps):
                losses[k].append(steps[k](data[1 + r * args.steps + i]))
            rounds[k].append(args.steps * args.batch / (time.perf_counter() - t0))
    rate = {k: statistics.median(v) for k, v in rounds.items()}
    ref = losses["fp32"] if "fp32" in losses else losses[names[0]]
    rel = {k: max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(v, ref)) for k, v in losses.items()}
    res = {
        "config": {
            "H": args.heads,
            "D": args.dim,
            "C": args.clusters,
            "pairs_per_step": args.batch,
            "threads": torch.get_num_threads(),
            "steps": args.steps,
            "rounds": args.rounds,
        },
        "pairs_per_second": rate,
        "speed_vs_fp32": {k: rate[k] / rate["fp32"] for k in rate} if "fp32" in rate else {},
        "max_relative_loss_difference_vs_fp32": rel,
        "final_loss": {k: v[-1] for k, v in losses.items()},
    }
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(
            f"H={args.heads} D={args.dim} C={args.clusters} batch={args.batch} pairs, {torch.get_num_threads()} "
            f"threads, {args.rounds} interleaved rounds x {args.steps} steps"
        )
        for k in names:
            print(
                f"  {k:<5} {rate[k]:8.1f} pairs/s  x{res['speed_vs_fp32'].get(k, float('nan')):.2f} vs fp32  "
                f"max rel. loss diff {rel[k]:.2e}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
