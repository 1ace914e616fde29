"""Training-step throughput: batched heads (one tensor program) vs a per-head ``nn.ModuleList``.

Both implementations run the SAME training step -- student forward on anchors + partners, teacher
forward (no grad), TEMI loss (``in21k_bench.methods.losses.temi_loss`` on the stacked logits),
backward, AdamW (wd 1e-4 on weights, none on biases/gains), EMA teacher update -- from the SAME
initial weights, side by side in one process. Printed: pairs/s of each, the ratio, and the relative
difference of the loss values at every timed step (must be <= 1e-5; exit code 1 otherwise), plus the
FLOPs per step counted from first principles. Timing: interleaved rounds (the order alternates), the
median round counts. ``--breakdown N`` also times the parts of a step (heads, shared loss, optimizer,
pure GEMMs) to show where the time goes.

    python benchmarks/heads.py --threads 1 --breakdown 3   # H=16, D=768, C=1000, batch 512 pairs, CPU
    python benchmarks/heads.py --threads 2 --json
"""

from __future__ import annotations

import argparse
import copy
import ctypes
import json
import statistics
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
        self.heads = nn.ModuleList(
            PerHead(batched.in_dim, batched.num_clusters, batched.hidden_dim, batched.bottleneck_dim) for _ in range(H)
        )
        with torch.no_grad():  # identical initial weights
            for h, m in enumerate(self.heads):
                m.mlp[0].weight.copy_(batched.w1[:, h].T)
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


def keep_large_allocations(enable: bool = True) -> bool:
    """Make glibc serve large blocks from the reusable heap instead of fresh ``mmap`` pages.

    By default glibc maps every block >= 32 MB afresh and unmaps it on free, so each such tensor
    costs ~8,000 page faults (kernel zeroing) EVERY step: at these sizes that is 50-200 k faults and
    ~0.3-0.6 s of a ~2 s step (``(1024, 8192)`` hidden activations, ``(16, 1024, 1000)`` logits and
    their gradients). Raising ``M_MMAP_THRESHOLD`` / ``M_TRIM_THRESHOLD`` keeps them in the heap.
    Process-wide, so it applies to both implementations alike. Returns whether it was applied
    (glibc only)."""
    if not enable:
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, 1 << 30)) and bool(libc.mallopt(m_trim_threshold, 1 << 31))
    except (OSError, AttributeError):
        return False


def _median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def breakdown(batched: BatchedHeads, listed: ModuleListHeads, rows: int, reps: int, g: torch.Generator) -> dict:
    """Seconds (median of ``reps`` interleaved repetitions) of the parts of a step:

    * ``heads``: student forward + teacher forward (no grad) + backward through the student from a
      fixed gradient of the logits -- the only part that differs between the two implementations;
    * ``loss``: TEMI loss forward + backward on fixed logits (the same function for both);
    * ``optimizer_ema``: AdamW step + EMA update;
    * ``gemm_only``: the step's matrix products alone (same shapes, random operands, one thread
      pool call each) -- the floor of any implementation at this machine's GEMM speed.
    """
    H, C = batched.num_heads, batched.num_clusters
    D, M, K = batched.in_dim, batched.hidden_dim, batched.bottleneck_dim
    x = F.normalize(torch.randn(rows, D, generator=g), dim=1)
    grad = torch.randn(H, rows, C, generator=g) * 1e-3
    s_fixed = torch.randn(H, rows, C, generator=g)
    t_fixed = torch.randn(H, rows, C, generator=g)
    prior = uniform_prior(H, C)
    teachers = {"batched": make_teacher(batched), "modulelist": _frozen(copy.deepcopy(listed))}
    models = {"batched": batched, "modulelist": listed}
    opts = {}
    for k, m in models.items():
        opts[k] = torch.optim.AdamW(m.param_groups(1e-4), lr=1e-9)
        for p in m.parameters():
            p.grad = torch.zeros_like(p)

    def heads_part(k):
        def f():
            out = models[k](x)
            with torch.no_grad():
                teachers[k](x)
            out.backward(grad)

        return f

    def opt_part(k):
        def f():
            opts[k].step()
            ema_update(teachers[k], models[k], 0.996)

        return f

    def loss_part():
        s = s_fixed.clone().requires_grad_(True)
        temi_loss(s, t_fixed, prior).loss.backward()

    ops = [
        (torch.randn(rows, D, generator=g), torch.randn(D, H * M, generator=g)),  # layer 1
        (torch.randn(H, rows, M, generator=g), torch.randn(H, M, K, generator=g)),  # layer 2
        (torch.randn(H, rows, K, generator=g), torch.randn(H, K, C, generator=g)),  # layer 3
    ]
    gy = [
        torch.randn(rows, H * M, generator=g),
        torch.randn(H, rows, K, generator=g),
        torch.randn(H, rows, C, generator=g),
    ]

    def gemm_only():
        for i, (a, w) in enumerate(ops):
            mul = torch.mm if i == 0 else torch.bmm
            mul(a, w)  # student forward
            mul(a, w)  # teacher forward
            mul(a.transpose(-1, -2), gy[i])  # weight gradient
            if i:  # input gradient (layers 2 and 3 only)
                mul(gy[i], w.transpose(-1, -2))

    parts = {
        "heads/batched": heads_part("batched"),
        "heads/modulelist": heads_part("modulelist"),
        "optimizer_ema/batched": opt_part("batched"),
        "optimizer_ema/modulelist": opt_part("modulelist"),
        "loss (shared)": loss_part,
        "gemm_only": gemm_only,
    }
    times: dict[str, list[float]] = {k: [] for k in parts}
    for r in range(reps + 1):  # first repetition is a warm-up
        for k, f in parts.items() if r % 2 == 0 else reversed(list(parts.items())):
            t0 = time.perf_counter()
            f()
            if r:
                times[k].append(time.perf_counter() - t0)
    for m in models.values():
        for p in m.parameters():
            p.grad = None
    return {k: _median(v) for k, v in times.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--clusters", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=512, help="pairs per step (rows = 2 x batch)")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per implementation and round")
    ap.add_argument(
        "--rounds", type=int, default=4, help="interleaved rounds (order alternates; the median round counts)"
    )
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument(
        "--breakdown",
        type=int,
        default=0,
        metavar="REPS",
        help="also time the parts of a step (heads / loss / optimizer / pure GEMMs), REPS repetitions",
    )
    ap.add_argument(
        "--glibc-mmap",
        action="store_true",
        help="keep glibc's default of mmap-ing (and page-faulting) every block >= 32 MB afresh",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    heap = keep_large_allocations(not args.glibc_mmap)
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
    data = [
        F.normalize(torch.randn(2 * args.batch, args.dim, generator=g), dim=1)
        for _ in range(1 + args.steps * args.rounds)
    ]
    losses = {k: [f(data[0])] for k, f in steps.items()}  # warm-up step (same data for both)
    rounds: dict[str, list[float]] = {k: [] for k in steps}  # pairs/s of each round
    for r in range(args.rounds):
        order = list(steps) if r % 2 == 0 else list(steps)[::-1]
        for k in order:
            t0 = time.perf_counter()
            for i in range(args.steps):
                losses[k].append(steps[k](data[1 + r * args.steps + i]))
            rounds[k].append(args.steps * args.batch / (time.perf_counter() - t0))
    n = args.steps * args.rounds
    rate = {k: _median(v) for k, v in rounds.items()}
    ratios = [a / b for a, b in zip(rounds["batched"], rounds["modulelist"])]
    rel = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(losses["batched"], losses["modulelist"]))
    fl = flops_per_step(args.heads, args.dim, args.clusters, args.batch)
    res = {
        "config": {
            "H": args.heads,
            "D": args.dim,
            "C": args.clusters,
            "pairs_per_step": args.batch,
            "threads": torch.get_num_threads(),
            "steps_per_round": args.steps,
            "rounds": args.rounds,
            "large_allocations_from_heap": heap,
        },
        "pairs_per_second": rate,
        "pairs_per_second_rounds": rounds,
        "speedup": rate["batched"] / rate["modulelist"],
        "speedup_rounds": ratios,
        "max_relative_loss_difference": rel,
        "loss_ok": rel <= 1e-5,
        "gflop_per_step": fl["total"] / 1e9,
        "achieved_gflops": {k: fl["total"] * rate[k] / args.batch / 1e9 for k in steps},
    }
    if args.breakdown:
        parts = breakdown(batched, listed, 2 * args.batch, args.breakdown, g)
        res["breakdown_seconds"] = parts
        res["gemm_only_gflops"] = fl["total"] / 1e9 / parts["gemm_only"]
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(
            f"H={args.heads} D={args.dim} C={args.clusters} batch={args.batch} pairs, {torch.get_num_threads()} "
            f"threads, {args.rounds} interleaved rounds x {args.steps} steps each (median round), "
            f"large blocks from {'heap' if heap else 'mmap'}"
        )
        for k in steps:
            print(f"  {k:<11} {rate[k]:8.1f} pairs/s  {res['achieved_gflops'][k]:7.1f} GFLOP/s")
        print(
            f"  speedup batched / modulelist: {res['speedup']:.2f}x (rounds: {', '.join(f'{r:.2f}' for r in ratios)})"
        )
        print(
            f"  max relative loss difference over {n + 1} steps: {rel:.2e} ({'ok' if res['loss_ok'] else 'FAIL'}, <= "
            "1e-5)"
        )
        print(f"  matmul FLOPs per step: {res['gflop_per_step']:.1f} GFLOP")
        if args.breakdown:
            print("  breakdown of one step (median seconds):")
            for k, v in res["breakdown_seconds"].items():
                print(f"    {k:<26} {v:7.3f} s")
            print(f"    pure-GEMM rate: {res['gemm_only_gflops']:.1f} GFLOP/s")
    return 0 if res["loss_ok"] else 1


def _frozen(m: nn.Module) -> nn.Module:
    for p in m.parameters():
        p.requires_grad_(False)
    return m


if __name__ == "__main__":
    raise SystemExit(main())
