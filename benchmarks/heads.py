"""Training-step throughput: batched heads (one tensor program) vs a per-head ``nn.ModuleList``.

Both implementations run the SAME training step -- student forward on anchors + partners, teacher
forward (no grad), TEMI loss (``in21k_bench.methods.losses.temi_loss`` on the stacked logits),
backward, AdamW (wd 1e-4 on weights, none on biases/gains), EMA teacher update -- from the SAME
initial weights, side by side in one process. Printed: pairs/s of each, the ratio, and the relative
difference of the loss values at every timed step (must be <= 1e-5), plus the FLOPs per step
counted from first principles.

    python benchmarks/heads.py                     # H=16, D=768, C=1000, batch 512 pairs, CPU
    python benchmarks/heads.py --steps 3 --json
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from in21k_bench.methods.heads import BatchedHeads, ema_update, make_teacher  # noqa: E402
from in21k_bench.methods.losses import temi_loss, uniform_prior  # noqa: E402


class PerHead(nn.Module):
    """One head the straightforward way: Linear - GELU - Linear - L2norm - weight_norm(Linear, no bias)."""

    def __init__(self, d: int, c: int, hidden: int = 512, bottleneck: int = 256) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(d, hidden), nn.GELU(), nn.Linear(hidden, bottleneck))
        self.last = nn.utils.parametrizations.weight_norm(nn.Linear(bottleneck, c, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.last(F.normalize(self.mlp(x), dim=-1))


class ModuleListHeads(nn.Module):
    def __init__(self, batched: BatchedHeads) -> None:
        super().__init__()
        H = batched.num_heads
        self.heads = nn.ModuleList(PerHead(batched.in_dim, batched.num_clusters, batched.hidden_dim, batched.bottleneck_dim) for _ in range(H))
        with torch.no_grad():  # identical initial weights
            for h, m in enumerate(self.heads):
                m.mlp[0].weight.copy_(batched.w1[h].T)
                m.mlp[0].bias.copy_(batched.b1[h])
                m.mlp[2].weight.copy_(batched.w2[h].T)
                m.mlp[2].bias.copy_(batched.b2[h])
                m.last.parametrizations.weight.original0.copy_(batched.g[h].unsqueeze(1))
                m.last.parametrizations.weight.original1.copy_(batched.v[h].T)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.heads])

    def param_groups(self, wd: float) -> list[dict]:
        decay, no = [], []
        for name, p in self.named_parameters():
            (no if name.endswith("bias") or name.endswith("original0") else decay).append(p)
        return [{"params": decay, "weight_decay": wd}, {"params": no, "weight_decay": 0.0}]


def make_step(student, teacher, lr=1e-3):
    opt = torch.optim.AdamW(student.param_groups(1e-4), lr=lr)
    state = {"prior": uniform_prior(student_heads(student), student_clusters(student))}

    def step(x: torch.Tensor) -> float:
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


def student_heads(m) -> int:
    return m.num_heads if isinstance(m, BatchedHeads) else len(m.heads)


def student_clusters(m) -> int:
    return m.num_clusters if isinstance(m, BatchedHeads) else m.heads[0].last.out_features


def flops_per_step(H: int, D: int, C: int, pairs: int, hidden: int = 512, bottleneck: int = 256) -> dict:
    """Matmul FLOPs (2 per multiply-add) of one step; rows = 2 * pairs (anchors and partners)."""
    rows = 2 * pairs
    macs_row = D * hidden + hidden * bottleneck + bottleneck * C
    fwd = 2 * rows * H * macs_row
    # backward: weight gradients of all three layers + input gradients of layers 2 and 3
    # (the input features need no gradient): 2 * fwd minus the layer-1 input gradient.
    bwd = 2 * fwd - 2 * rows * H * D * hidden
    teacher = fwd
    return {"student_forward": fwd, "student_backward": bwd, "teacher_forward": teacher, "total": fwd + bwd + teacher}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--clusters", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=512, help="pairs per step (rows = 2 x batch)")
    ap.add_argument("--steps", type=int, default=5, help="timed steps per implementation (after 1 warm-up step)")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds (reduces drift on a shared machine)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    batched = BatchedHeads(args.dim, args.clusters, args.heads, generator=g)
    listed = ModuleListHeads(batched)
    steps = {
        "batched": make_step(batched, make_teacher(batched)),
        "modulelist": make_step(listed, _frozen(copy.deepcopy(listed))),
    }
    data = [F.normalize(torch.randn(2 * args.batch, args.dim, generator=g), dim=1) for _ in range(1 + args.steps * args.rounds)]
    losses = {k: [f(data[0])] for k, f in steps.items()}  # warm-up step (same data for both)
    times = {k: 0.0 for k in steps}
    for r in range(args.rounds):
        order = list(steps) if r % 2 == 0 else list(steps)[::-1]
        for k in order:
            t0 = time.perf_counter()
            for i in range(args.steps):
                losses[k].append(steps[k](data[1 + r * args.steps + i]))
            times[k] += time.perf_counter() - t0
    n = args.steps * args.rounds
    rate = {k: n * args.batch / times[k] for k in steps}
    rel = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(losses["batched"], losses["modulelist"]))
    fl = flops_per_step(args.heads, args.dim, args.clusters, args.batch)
    res = {
        "config": {"H": args.heads, "D": args.dim, "C": args.clusters, "pairs_per_step": args.batch,
                   "threads": torch.get_num_threads(), "timed_steps": n},
        "pairs_per_second": rate,
        "speedup": rate["batched"] / rate["modulelist"],
        "max_relative_loss_difference": rel,
        "gflop_per_step": fl["total"] / 1e9,
        "achieved_gflops": {k: fl["total"] / (times[k] / n) / 1e9 for k in steps},
    }
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(f"H={args.heads} D={args.dim} C={args.clusters} batch={args.batch} pairs, {torch.get_num_threads()} threads, {n} steps each")
        for k in steps:
            print(f"  {k:<11} {rate[k]:8.1f} pairs/s  {res['achieved_gflops'][k]:7.1f} GFLOP/s")
        print(f"  speedup batched / modulelist: {res['speedup']:.2f}x")
        print(f"  max relative loss difference over {n + 1} steps: {rel:.2e}")
        print(f"  matmul FLOPs per step: {res['gflop_per_step']:.1f} GFLOP")
    return 0


def _frozen(m: nn.Module) -> nn.Module:
    for p in m.parameters():
        p.requires_grad_(False)
    return m


if __name__ == "__main__":
    raise SystemExit(main())
