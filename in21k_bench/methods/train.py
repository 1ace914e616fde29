"""Training loop shared by TEMI and SCANv2 (docs/methods.md, "Training loop"): resumable, single- or multi-GPU.

One step: draw a global batch of anchors ``x`` (a random permutation of the training set, fresh
every epoch) and, for each anchor, a partner ``x'`` uniformly from its top-``k`` neighbours; run
student and teacher heads on ``[x; x']``; loss (TEMI or SCANv2); AdamW step; EMA teacher update.

Determinism and resume: the anchors and partners of epoch ``e`` depend only on ``(seed, e)``, so a
run resumed from the checkpoint of epoch ``e - 1`` (model, teacher, optimizer, TEMI prior, loss
history, RNG states) replays exactly what the uninterrupted run would have done.

Multi-GPU: under ``torchrun`` (``WORLD_SIZE > 1``) :func:`fit` initialises ``torch.distributed``
(NCCL on GPUs, gloo on CPU), wraps the student in ``DistributedDataParallel`` and gives every
rank a contiguous slice of the same global batch. The TEMI prior and the SCANv2 marginal are
all-reduced over ranks (see :mod:`.losses`), so the run matches one process with the same global
batch up to floating-point summation order.

Features are either an in-memory ``np.ndarray`` (rows L2-normalised here) or a feature store
(anything with ``num_rows``, ``dim``, ``take(indices, normalize=True)`` and
``iter_chunks(chunk_rows, normalize=True)``, see ``docs/design.md``).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from ..device import resolve_device
from ..errors import (
    InvalidInputError,
    ResumeError,
)  # ResumeError re-exported: importable from here as before
from ..fileio import atomic_path
from ..predictions import write_predictions
from .distributed import barrier, init_distributed
from .features_input import as_features  # also importable from here, as before
from .heads import BatchedHeads, ema_update, make_teacher, teacher_momentum
from .health import CURVE_POINTS, health_report
from .losses import scanv2_loss, temi_loss, uniform_prior

__all__ = [
    "FitResult",
    "TrainConfig",
    "TEMI_DEFAULT_K",
    "ResumeError",
    "fit",
    "head_cluster_sizes",
    "init_distributed",
    "lr_at",
    "paper_defaults",
    "predict",
]

METHODS = ("temi", "scanv2")
LR_SCHEDULES = ("cosine", "constant")
INPUT_NORMS = ("l2", "raw")
#: TEMI's number of neighbours: ``--knn`` defaults to 50 in the official TEMI code
#: (HHU-MMBS/TEMI-official-BMVC2023, ``main_args.py``), also used in its README commands.
TEMI_DEFAULT_K = 50
CHECKPOINT = "checkpoint.pt"


@dataclass
class TrainConfig:
    """Hyper-parameters. Defaults are the paper's ImageNet-1K TEMI settings (see
    :func:`paper_defaults` for SCANv2 and ImageNet-21K)."""

    method: str = "temi"
    num_clusters: int = 1000
    num_heads: int = 32
    epochs: int = 50
    batch_size: int = 512  # global batch (all ranks together)
    knn: int = TEMI_DEFAULT_K
    base_lr: float = 1e-4  # for a batch of 256; scaled by batch_size / 256
    min_lr: float = 1e-6  # end of the cosine schedule (absolute, or per 256 with scale_min_lr)
    warmup_epochs: float | None = None  # None: 10% of the epochs
    lr_schedule: str = "cosine"  # after warm-up: "cosine" to min_lr, or "constant" (official TEMI README recipes)
    scale_min_lr: bool = False  # official TEMI code: min_lr is also scaled by batch / 256
    freeze_last_layer_epochs: float = 0.0  # official TEMI default 1: no update of the cluster layer (v, g) at first
    input_norm: str = "l2"  # "l2": L2-normalised features into the heads; "raw": as stored (official TEMI)
    weight_decay: float = 1e-4  # AdamW; none on biases and gains
    teacher_momentum: float = 0.996
    teacher_momentum_final: float | None = None  # e.g. 1.0 for a cosine schedule
    student_temp: float = 0.1
    teacher_temp: float = 0.1
    beta: float = 0.6  # TEMI
    prior_momentum: float = 0.9  # TEMI
    alpha: float = 5.0  # SCANv2
    hidden_dim: int = 512
    bottleneck_dim: int = 256
    amp: bool = True  # bf16 autocast on CUDA (ignored on CPU)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InvalidInputError(f"train: expected method in {METHODS}, got {self.method!r}")
        for name in ("num_clusters", "num_heads", "epochs", "batch_size", "knn"):
            if int(getattr(self, name)) < 1:
                raise InvalidInputError(f"train: expected {name} >= 1, got {getattr(self, name)}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise InvalidInputError(f"train: expected lr_schedule in {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if self.input_norm not in INPUT_NORMS:
            raise InvalidInputError(f"train: expected input_norm in {INPUT_NORMS}, got {self.input_norm!r}")
        for name in ("base_lr", "min_lr", "freeze_last_layer_epochs"):
            v = float(getattr(self, name))
            if not math.isfinite(v) or v < 0:
                raise InvalidInputError(f"train: expected {name} >= 0, got {v}")

    @property
    def lr(self) -> float:
        """Peak learning rate after scaling by batch / 256."""
        return self.base_lr * self.batch_size / 256.0

    @property
    def end_lr(self) -> float:
        """Learning rate at the end of the cosine schedule."""
        return self.min_lr * (self.batch_size / 256.0 if self.scale_min_lr else 1.0)

    @property
    def normalize_inputs(self) -> bool:
        return self.input_norm == "l2"

    @property
    def warmup(self) -> float:
        return self.epochs / 10.0 if self.warmup_epochs is None else float(self.warmup_epochs)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def paper_defaults(method: str, dataset: str = "imagenet-1k", num_clusters: int = 1000) -> TrainConfig:
    """The paper's settings: 50 epochs on ImageNet-1K, 25 on ImageNet-21K benchmarks; batch 512
    (TEMI) / 4096 (SCANv2); 32 heads; k = 50 (TEMI default); temperatures 0.1."""
    epochs = 50 if dataset.startswith("imagenet-1k") or dataset in ("real1k", "in1k") else 25
    batch = 512 if method == "temi" else 4096
    return TrainConfig(method=method, num_clusters=num_clusters, epochs=epochs, batch_size=batch)


def lr_at(step: int, steps_per_epoch: int, cfg: TrainConfig) -> float:
    """Linear warm-up from 0 to ``cfg.lr`` over ``cfg.warmup`` epochs, then cosine to ``cfg.end_lr``
    (``lr_schedule="cosine"``) or constant at ``cfg.lr`` (``"constant"``)."""
    total = cfg.epochs * steps_per_epoch
    warm = int(round(cfg.warmup * steps_per_epoch))
    if step < warm:
        return cfg.lr * (step + 1) / warm
    if total - warm <= 1 or cfg.lr_schedule == "constant":
        return cfg.lr
    t = (step - warm) / (total - warm - 1)
    end = cfg.end_lr
    return end + (cfg.lr - end) * 0.5 * (1.0 + math.cos(math.pi * min(t, 1.0)))


def _check_neighbors(nbrs: Any, n: int, k: int) -> np.ndarray:
    nbrs = np.asarray(nbrs)
    if nbrs.ndim != 2 or nbrs.shape[0] != n or not np.issubdtype(nbrs.dtype, np.integer):
        raise InvalidInputError(
            f"train: expected an integer neighbour array of shape ({n}, >= {k}), got {nbrs.dtype} {nbrs.shape}"
        )
    if nbrs.shape[1] < k:
        raise InvalidInputError(f"train: expected at least k={k} neighbours per sample, found {nbrs.shape[1]}")
    nbrs = nbrs[:, :k]
    lo, hi = int(nbrs.min()), int(nbrs.max())
    if lo < 0 or hi >= n:
        raise InvalidInputError(f"train: neighbour indices must lie in [0, {n}), found [{lo}, {hi}]")
    return np.ascontiguousarray(nbrs)  # int32 from mine_knn stays int32 (half the memory)


def epoch_pairs(
    n: int, nbrs: np.ndarray, steps: int, batch: int, seed: int, epoch: int
) -> tuple[np.ndarray, np.ndarray]:
    """Anchors (a permutation of the training set, first ``steps * batch``) and partners drawn
    uniformly from each anchor's neighbour list; depends only on ``(seed, epoch)``."""
    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))
    anchors = torch.randperm(n, generator=g)[: steps * batch].numpy()
    col = torch.randint(nbrs.shape[1], (steps * batch,), generator=g).numpy()
    return anchors, nbrs[anchors, col]


def _torch_device(device: str | torch.device) -> torch.device:
    return torch.device(resolve_device(device, engine="torch"))


# --------------------------------------------------------------------------- results


@dataclass
class FitResult:
    best_head: int
    head_losses: np.ndarray  # (H,) mean training loss per head over the last epoch
    history: list[dict] = field(default_factory=list)  # per epoch: mean loss, best head, time
    top1: np.ndarray | None = None
    top5: np.ndarray | None = None
    probs: np.ndarray | None = None
    out_dir: Path | None = None
    resumed_from_epoch: int = 0
    health: dict | None = None  # cluster usage per head + chosen head, loss curve, warnings (health.py)
    total_steps: int = 0


def _rng_state() -> dict:
    st = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _fingerprint(n: int, dim: int, nbrs: np.ndarray) -> dict:
    probe = nbrs[:: max(1, n // 1000)]
    return {"num_rows": int(n), "dim": int(dim), "knn_sum": int(probe.sum() % (1 << 61))}


def _save_checkpoint(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _load_checkpoint(path: Path, cfg: TrainConfig, fingerprint: dict) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt or foreign file
        raise ResumeError(f"resume: could not read checkpoint {path}: {exc}") from None
    if state.get("config") != json.dumps(cfg.to_dict(), sort_keys=True):
        raise ResumeError(
            f"resume: checkpoint {path} was written with a different configuration; "
            "use the same options or --no-resume / another --out"
        )
    if state.get("fingerprint") != json.dumps(fingerprint, sort_keys=True):
        raise ResumeError(f"resume: checkpoint {path} was written for different features or neighbours")
    return state


# --------------------------------------------------------------------------- loop


def fit(
    train_features: Any,
    neighbors: Any,
    config: TrainConfig,
    *,
    val_features: Any = None,
    out_dir: str | os.PathLike | None = None,
    resume: bool = True,
    device: str | torch.device = "auto",
    save_probs: bool | None = None,
    progress: bool | None = None,
    on_epoch_end: Callable[[int, dict], None] | None = None,
    settings: dict | None = None,
    min_steps: int = 0,
) -> FitResult:
    """Train the heads and predict with the best teacher head.

    ``neighbors``: ``(N, >= k)`` integer array of neighbour indices (the first ``k`` are used).
    ``out_dir``: if given, a checkpoint is written every epoch (atomically) and the run resumes from
    it when ``resume``; on rank 0 ``top1.npy``, ``top5.npy``, ``probs.npy`` (unless ``save_probs`` is
    False; default: when the array is <= 4 GB) and ``fit.json`` are written there.
    ``val_features``: features to predict (default: the training features).
    ``settings``: where each setting came from (recorded in ``fit.json``, see :mod:`.recipe`);
    ``min_steps``: the step budget the health check compares against (0: none).
    ``progress``: a bar over the steps of each epoch on stderr (None: on, False: off).
    """
    cfg = config
    cfg.__post_init__()
    dist_info = init_distributed(device)
    dev = _torch_device(device)
    if dev.type == "cuda" and dist_info.enabled:
        dev = torch.device("cuda", dist_info.local_rank)
    feats = as_features(train_features)
    n = int(feats.num_rows)
    nbrs = _check_neighbors(neighbors, n, cfg.knn)
    world = dist_info.world_size
    if cfg.batch_size % world:
        raise InvalidInputError(f"train: batch size {cfg.batch_size} is not divisible by the {world} processes")
    if cfg.batch_size > n:
        raise InvalidInputError(f"train: batch size {cfg.batch_size} is larger than the training set ({n} rows)")
    steps = n // cfg.batch_size
    local_b = cfg.batch_size // world
    total_steps = steps * cfg.epochs
    out = Path(out_dir) if out_dir is not None else None
    is_main = dist_info.rank == 0
    norm_in = cfg.normalize_inputs

    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    student = BatchedHeads(
        int(feats.dim), cfg.num_clusters, cfg.num_heads, cfg.hidden_dim, cfg.bottleneck_dim, generator=g
    )
    teacher = make_teacher(student)
    student.to(dev)
    teacher.to(dev)
    opt = torch.optim.AdamW(student.param_groups(cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.999))
    prior = uniform_prior(cfg.num_heads, cfg.num_clusters, device=dev)
    history: list[dict] = []
    # loss of every head averaged over CURVE_POINTS equal windows of the optimizer steps
    curve_sum = torch.zeros(CURVE_POINTS, cfg.num_heads, dtype=torch.float64, device=dev)
    curve_cnt = torch.zeros(CURVE_POINTS, dtype=torch.float64, device=dev)
    start_epoch = 0
    fingerprint = _fingerprint(n, int(feats.dim), nbrs)
    ckpt_path = out / CHECKPOINT if out is not None else None
    if ckpt_path is not None and resume and ckpt_path.is_file():
        state = _load_checkpoint(ckpt_path, cfg, fingerprint)
        student.load_state_dict(state["student"])
        teacher.load_state_dict(state["teacher"])
        opt.load_state_dict(state["optimizer"])
        prior = state["prior"].to(dev)
        curve_sum = state["curve_sum"].to(dev)
        curve_cnt = state["curve_cnt"].to(dev)
        history = json.loads(state["history"])
        start_epoch = int(state["epoch"]) + 1
        torch.set_rng_state(state["rng"]["torch"])
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        if is_main:
            print(f"resuming from {ckpt_path} after epoch {start_epoch}/{cfg.epochs}", file=sys.stderr)

    model: nn.Module = student
    all_reduce = None
    if dist_info.enabled:
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(student, device_ids=[dev.index] if dev.type == "cuda" else None)
        all_reduce = dist.all_reduce
    autocast = dev.type == "cuda" and cfg.amp

    def step_loss(x: torch.Tensor):
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=autocast):
            s_logits = model(x)
            with torch.no_grad():
                t_logits = teacher(x)
        if cfg.method == "temi":
            return temi_loss(
                s_logits,
                t_logits,
                prior,
                beta=cfg.beta,
                student_temp=cfg.student_temp,
                teacher_temp=cfg.teacher_temp,
                prior_momentum=cfg.prior_momentum,
                all_reduce=all_reduce,
                world_size=world,
            )
        return scanv2_loss(
            s_logits,
            t_logits,
            alpha=cfg.alpha,
            student_temp=cfg.student_temp,
            teacher_temp=cfg.teacher_temp,
            all_reduce=all_reduce,
            world_size=world,
        )

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    show = (progress is not False) and is_main
    tty = sys.stderr.isatty()
    try:
        for epoch in range(start_epoch, cfg.epochs):
            t0 = time.perf_counter()
            anchors, partners = epoch_pairs(n, nbrs, steps, cfg.batch_size, cfg.seed, epoch)
            frozen = epoch < cfg.freeze_last_layer_epochs

            def load(s: int, anchors=anchors, partners=partners) -> np.ndarray:  # bound: runs on the prefetch thread
                lo = s * cfg.batch_size + dist_info.rank * local_b
                idx = np.concatenate([anchors[lo : lo + local_b], partners[lo : lo + local_b]])
                return np.ascontiguousarray(feats.take(idx, normalize=norm_in), dtype=np.float32)

            head_sum = torch.zeros(cfg.num_heads, dtype=torch.float64, device=dev)
            bar = tqdm(
                total=steps,
                unit="step",
                file=sys.stderr,
                desc=f"{cfg.method} epoch {epoch + 1}/{cfg.epochs}",
                disable=not show,
                leave=False,
                mininterval=0.5 if tty else 30.0,
            )
            nxt = pool.submit(load, 0)
            for s in range(steps):
                batch = nxt.result()
                if s + 1 < steps:
                    nxt = pool.submit(load, s + 1)
                gstep = epoch * steps + s
                for group in opt.param_groups:
                    group["lr"] = lr_at(gstep, steps, cfg)
                x = torch.from_numpy(batch).to(dev, non_blocking=True)
                res = step_loss(x)
                if cfg.method == "temi":
                    prior = res.state
                opt.zero_grad(set_to_none=True)
                res.loss.backward()
                if frozen:  # official TEMI: the cluster layer is not updated during the first epoch(s)
                    student.v.grad = None
                    student.g.grad = None
                opt.step()
                ema_update(
                    teacher,
                    student,
                    teacher_momentum(gstep, total_steps, cfg.teacher_momentum, cfg.teacher_momentum_final),
                )
                per_head = res.per_head.double()
                head_sum += per_head
                w = gstep * CURVE_POINTS // max(total_steps, 1)
                curve_sum[w] += per_head
                curve_cnt[w] += 1
                bar.update(1)
                if s % 10 == 0 or s + 1 == steps:
                    bar.set_postfix(loss=f"{res.loss.item():.4f}", refresh=False)
            bar.close()
            if all_reduce is not None:
                all_reduce(head_sum)
                head_sum /= world
            head_mean = (head_sum / steps).cpu().numpy()
            rec = {
                "epoch": epoch,
                "loss": float(head_mean.mean()),
                "best_head": int(head_mean.argmin()),
                "best_loss": float(head_mean.min()),
                "head_losses": [float(v) for v in head_mean],
                "seconds": round(time.perf_counter() - t0, 3),
                "pairs_per_second": round(steps * cfg.batch_size / max(time.perf_counter() - t0, 1e-9), 1),
            }
            history.append(rec)
            every = max(1, math.ceil(cfg.epochs / 50))  # at most ~50 epoch lines on small sets with many epochs
            if is_main and (progress is not False) and ((epoch + 1) % every == 0 or epoch + 1 == cfg.epochs):
                left = (cfg.epochs - epoch - 1) * rec["seconds"]
                print(
                    f"{cfg.method} epoch {epoch + 1}/{cfg.epochs}: loss {rec['loss']:.4f} best head "
                    f"{rec['best_head']} ({rec['best_loss']:.4f}), {rec['pairs_per_second']:.0f} pairs/s, "
                    f"about {left / 60:.1f} min left",
                    file=sys.stderr,
                )
            if ckpt_path is not None and is_main:
                _save_checkpoint(
                    ckpt_path,
                    {
                        "student": student.state_dict(),
                        "teacher": teacher.state_dict(),
                        "optimizer": opt.state_dict(),
                        "prior": prior.detach().cpu(),
                        "curve_sum": curve_sum.cpu(),
                        "curve_cnt": curve_cnt.cpu(),
                        "epoch": epoch,
                        "history": json.dumps(history),
                        "rng": _rng_state(),
                        "config": json.dumps(cfg.to_dict(), sort_keys=True),
                        "fingerprint": json.dumps(fingerprint, sort_keys=True),
                    },
                )
            barrier(dist_info)
            if on_epoch_end is not None:
                on_epoch_end(epoch, rec)
    finally:
        pool.shutdown(wait=True)

    if not history:
        raise InvalidInputError("train: no epoch was run")
    head_losses = np.asarray(history[-1]["head_losses"])
    best = int(head_losses.argmin())
    result = FitResult(best, head_losses, history, out_dir=out, resumed_from_epoch=start_epoch, total_steps=total_steps)
    if is_main:
        vf = as_features(val_features) if val_features is not None else feats
        want_probs = save_probs
        if want_probs is None:
            want_probs = int(vf.num_rows) * cfg.num_clusters * 4 <= 4 << 30
        top1, top5, probs = predict(
            teacher,
            vf,
            best,
            teacher_temp=cfg.teacher_temp,
            device=dev,
            with_probs=bool(want_probs),
            progress=show,
            normalize=norm_in,
        )
        result.top1, result.top5, result.probs = top1, top5, probs
        sizes = head_cluster_sizes(teacher, vf, device=dev, normalize=norm_in)
        cnt = curve_cnt.cpu().numpy()
        curve = [
            float(v) if c > 0 else None
            for v, c in zip((curve_sum[:, best] / curve_cnt.clamp_min(1)).cpu().numpy(), cnt)
        ]
        result.health = health_report(sizes, best, curve, total_steps, min_steps=min_steps, method=cfg.method)
        for msg in result.health["warnings"]:
            print(f"fit {cfg.method}: warning: {msg}", file=sys.stderr)
        if out is not None:
            write_predictions(
                out,
                top1,
                top5,
                probs,
                record_name="fit.json",
                record={
                    "method": cfg.method,
                    "config": cfg.to_dict(),
                    "settings": settings or {},
                    "steps_per_epoch": steps,
                    "total_steps": total_steps,
                    "best_head": best,
                    "head_losses": [float(v) for v in head_losses],
                    "health": result.health,
                    "history": history,
                    "world_size": world,
                    "num_train": n,
                    "num_predicted": int(vf.num_rows),
                    "files": ["top1.npy", "top5.npy"] + (["probs.npy"] if probs is not None else []),
                },
            )
    barrier(dist_info)
    return result


def _head_input(x: np.ndarray, dev: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(dev)


@torch.no_grad()
def head_cluster_sizes(
    heads: BatchedHeads,
    features: Any,
    *,
    device: str | torch.device = "cpu",
    normalize: bool = True,
    chunk_rows: int = 16384,
) -> np.ndarray:
    """``(H, C)`` number of rows that each head assigns (top-1) to each cluster."""
    feats = as_features(features)
    dev = _torch_device(device) if not isinstance(device, torch.device) else device
    heads = heads.to(dev).eval()
    counts = torch.zeros(heads.num_heads, heads.num_clusters, dtype=torch.int64, device=dev)
    for _, x in feats.iter_chunks(chunk_rows, normalize=normalize):
        top = heads(_head_input(x, dev)).argmax(dim=-1)  # (H, B)
        counts.scatter_add_(1, top, torch.ones_like(top))
    return counts.cpu().numpy()


@torch.no_grad()
def predict(
    heads: BatchedHeads,
    features: Any,
    head: int,
    *,
    teacher_temp: float = 0.1,
    device: str | torch.device = "cpu",
    with_probs: bool = True,
    chunk_rows: int = 65536,
    progress: bool | None = None,
    normalize: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Top-1 (N,), top-5 (N, min(5, C)) clusters and probabilities (N, C) of one head; ``normalize``
    must match the training run's ``input_norm`` (True for ``"l2"``)."""
    feats = as_features(features)
    dev = _torch_device(device) if not isinstance(device, torch.device) else device
    heads = heads.to(dev).eval()
    n, c = int(feats.num_rows), heads.num_clusters
    k = min(5, c)
    top1 = np.empty(n, dtype=np.int64)
    top5 = np.empty((n, k), dtype=np.int64)
    probs = np.empty((n, c), dtype=np.float32) if with_probs else None
    bar = tqdm(
        total=n, unit="row", unit_scale=True, file=sys.stderr, desc="predict", disable=progress is False, leave=False
    )
    for start, x in feats.iter_chunks(chunk_rows, normalize=normalize):
        xt = _head_input(x, dev)
        logits = heads.head_logits(xt, head).float() / teacher_temp
        top = logits.topk(k, dim=1).indices
        stop = start + xt.shape[0]
        top5[start:stop] = top.cpu().numpy()
        top1[start:stop] = top5[start:stop, 0]
        if probs is not None:
            probs[start:stop] = F.softmax(logits, dim=1).cpu().numpy()
        bar.update(xt.shape[0])
    bar.close()
    return top1, top5, probs
