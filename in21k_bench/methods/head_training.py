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

from ..errors import (
    InvalidInputError,
    ResumeError,
)  # ResumeError re-exported: importable from here as before
from ..evaluation.predictions import write_predictions
from ..fileio import atomic_path
from ..runtime.device import resolve_device
from ..runtime.distributed import init as init_distributed
from .features_input import as_features  # also importable from here, as before
from .heads import BatchedHeads, ema_update, make_teacher, teacher_momentum
from .health import CURVE_POINTS, health_report
from .losses import scanv2_loss, temi_loss, uniform_prior
from .train_config import TEMI_DEFAULT_K, TrainConfig, lr_at, paper_defaults

__all__ = [
    "FitResult",
    "TrainConfig",
    "TEMI_DEFAULT_K",
    "ResumeError",
    "fit",
    "head_cluster_sizes",
    "lr_at",
    "paper_defaults",
    "predict",
]

CHECKPOINT = "checkpoint.pt"


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


class _Training:
    """The state of one training run: set-up (:meth:`__init__`), resume (:meth:`resume`), one
    epoch (:meth:`run_epoch`), checkpointing (:meth:`save_checkpoint`) and finishing
    (:meth:`finish`). :func:`fit` runs them in that order."""

    def __init__(self, train_features: Any, neighbors: Any, cfg: TrainConfig, device: Any, out_dir: Any) -> None:
        cfg.__post_init__()
        self.cfg = cfg
        self.dist = init_distributed(device)
        dev = _torch_device(device)
        if dev.type == "cuda" and self.dist.enabled:
            dev = torch.device("cuda", self.dist.local_rank)
        self.dev = dev
        self.feats = feats = as_features(train_features)
        self.n = n = int(feats.num_rows)
        self.nbrs = _check_neighbors(neighbors, n, cfg.knn)
        world = self.dist.world_size
        if cfg.batch_size % world:
            raise InvalidInputError(f"train: batch size {cfg.batch_size} is not divisible by the {world} processes")
        if cfg.batch_size > n:
            raise InvalidInputError(f"train: batch size {cfg.batch_size} is larger than the training set ({n} rows)")
        self.steps = n // cfg.batch_size
        self.local_b = cfg.batch_size // world
        self.total_steps = self.steps * cfg.epochs
        self.out = Path(out_dir) if out_dir is not None else None

        torch.manual_seed(cfg.seed)
        g = torch.Generator().manual_seed(cfg.seed)
        self.student = BatchedHeads(
            int(feats.dim), cfg.num_clusters, cfg.num_heads, cfg.hidden_dim, cfg.bottleneck_dim, generator=g
        )
        self.teacher = make_teacher(self.student)
        self.student.to(dev)
        self.teacher.to(dev)
        self.opt = torch.optim.AdamW(self.student.param_groups(cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.999))
        self.prior = uniform_prior(cfg.num_heads, cfg.num_clusters, device=dev)
        self.history: list[dict] = []
        # loss of every head averaged over CURVE_POINTS equal windows of the optimizer steps
        self.curve_sum = torch.zeros(CURVE_POINTS, cfg.num_heads, dtype=torch.float64, device=dev)
        self.curve_cnt = torch.zeros(CURVE_POINTS, dtype=torch.float64, device=dev)
        self.start_epoch = 0
        self.fingerprint = _fingerprint(n, int(feats.dim), self.nbrs)
        self.ckpt_path = self.out / CHECKPOINT if self.out is not None else None
        self.model: nn.Module = self.student
        self.all_reduce = None
        self.autocast = dev.type == "cuda" and cfg.amp

    @property
    def world(self) -> int:
        return self.dist.world_size

    @property
    def is_main(self) -> bool:
        return self.dist.is_main

    def resume(self) -> None:
        """Load the checkpoint of the last finished epoch (model, teacher, optimizer, prior, curves,
        history, RNG state) and wrap the student for ``DistributedDataParallel`` under torchrun."""
        ckpt_path = self.ckpt_path
        if ckpt_path is not None and ckpt_path.is_file():
            state = _load_checkpoint(ckpt_path, self.cfg, self.fingerprint)
            self.student.load_state_dict(state["student"])
            self.teacher.load_state_dict(state["teacher"])
            self.opt.load_state_dict(state["optimizer"])
            self.prior = state["prior"].to(self.dev)
            self.curve_sum = state["curve_sum"].to(self.dev)
            self.curve_cnt = state["curve_cnt"].to(self.dev)
            self.history = json.loads(state["history"])
            self.start_epoch = int(state["epoch"]) + 1
            torch.set_rng_state(state["rng"]["torch"])
            if "cuda" in state["rng"] and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(state["rng"]["cuda"])
            if self.is_main:
                print(f"resuming from {ckpt_path} after epoch {self.start_epoch}/{self.cfg.epochs}", file=sys.stderr)

    def wrap_distributed(self) -> None:
        if self.dist.enabled:
            import torch.distributed as dist
            from torch.nn.parallel import DistributedDataParallel

            dev = self.dev
            self.model = DistributedDataParallel(self.student, device_ids=[dev.index] if dev.type == "cuda" else None)
            self.all_reduce = dist.all_reduce

    def step_loss(self, x: torch.Tensor):
        cfg = self.cfg
        with torch.autocast(device_type=self.dev.type, dtype=torch.bfloat16, enabled=self.autocast):
            s_logits = self.model(x)
            with torch.no_grad():
                t_logits = self.teacher(x)
        if cfg.method == "temi":
            return temi_loss(
                s_logits,
                t_logits,
                self.prior,
                beta=cfg.beta,
                student_temp=cfg.student_temp,
                teacher_temp=cfg.teacher_temp,
                prior_momentum=cfg.prior_momentum,
                all_reduce=self.all_reduce,
                world_size=self.world,
            )
        return scanv2_loss(
            s_logits,
            t_logits,
            alpha=cfg.alpha,
            student_temp=cfg.student_temp,
            teacher_temp=cfg.teacher_temp,
            all_reduce=self.all_reduce,
            world_size=self.world,
        )

    def _load_batch(self, s: int, anchors: np.ndarray, partners: np.ndarray) -> np.ndarray:
        """This rank's slice of global batch ``s`` (anchors then partners); runs on the prefetch thread."""
        b, local_b = self.cfg.batch_size, self.local_b
        lo = s * b + self.dist.rank * local_b
        idx = np.concatenate([anchors[lo : lo + local_b], partners[lo : lo + local_b]])
        return np.ascontiguousarray(self.feats.take(idx, normalize=self.cfg.normalize_inputs), dtype=np.float32)

    def _optimizer_step(self, batch: np.ndarray, gstep: int, frozen: bool):
        cfg, opt, student = self.cfg, self.opt, self.student
        for group in opt.param_groups:
            group["lr"] = lr_at(gstep, self.steps, cfg)
        x = torch.from_numpy(batch).to(self.dev, non_blocking=True)
        res = self.step_loss(x)
        if cfg.method == "temi":
            self.prior = res.state
        opt.zero_grad(set_to_none=True)
        res.loss.backward()
        if frozen:  # official TEMI: the cluster layer is not updated during the first epoch(s)
            student.v.grad = None
            student.g.grad = None
        opt.step()
        ema_update(
            self.teacher,
            student,
            teacher_momentum(gstep, self.total_steps, cfg.teacher_momentum, cfg.teacher_momentum_final),
        )
        return res

    def run_epoch(self, epoch: int, pool: concurrent.futures.Executor, show: bool) -> dict:
        """One pass over the epoch's anchor/partner pairs; returns the epoch's history record."""
        cfg, steps = self.cfg, self.steps
        t0 = time.perf_counter()
        anchors, partners = epoch_pairs(self.n, self.nbrs, steps, cfg.batch_size, cfg.seed, epoch)
        frozen = epoch < cfg.freeze_last_layer_epochs
        head_sum = torch.zeros(cfg.num_heads, dtype=torch.float64, device=self.dev)
        bar = tqdm(
            total=steps,
            unit="step",
            file=sys.stderr,
            desc=f"{cfg.method} epoch {epoch + 1}/{cfg.epochs}",
            disable=not show,
            leave=False,
            mininterval=0.5 if sys.stderr.isatty() else 30.0,
        )
        nxt = pool.submit(self._load_batch, 0, anchors, partners)
        for s in range(steps):
            batch = nxt.result()
            if s + 1 < steps:
                nxt = pool.submit(self._load_batch, s + 1, anchors, partners)
            gstep = epoch * steps + s
            res = self._optimizer_step(batch, gstep, frozen)
            per_head = res.per_head.double()
            head_sum += per_head
            w = gstep * CURVE_POINTS // max(self.total_steps, 1)
            self.curve_sum[w] += per_head
            self.curve_cnt[w] += 1
            bar.update(1)
            if s % 10 == 0 or s + 1 == steps:
                bar.set_postfix(loss=f"{res.loss.item():.4f}", refresh=False)
        bar.close()
        if self.all_reduce is not None:
            self.all_reduce(head_sum)
            head_sum /= self.world
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
        self.history.append(rec)
        return rec

    def log_epoch(self, epoch: int, rec: dict, progress: bool | None) -> None:
        cfg = self.cfg
        every = max(1, math.ceil(cfg.epochs / 50))  # at most ~50 epoch lines on small sets with many epochs
        if self.is_main and (progress is not False) and ((epoch + 1) % every == 0 or epoch + 1 == cfg.epochs):
            left = (cfg.epochs - epoch - 1) * rec["seconds"]
            print(
                f"{cfg.method} epoch {epoch + 1}/{cfg.epochs}: loss {rec['loss']:.4f} best head "
                f"{rec['best_head']} ({rec['best_loss']:.4f}), {rec['pairs_per_second']:.0f} pairs/s, "
                f"about {left / 60:.1f} min left",
                file=sys.stderr,
            )

    def save_checkpoint(self, epoch: int) -> None:
        """Rank 0 writes the state after ``epoch`` (atomically); every rank then waits at a barrier."""
        if self.ckpt_path is not None and self.is_main:
            _save_checkpoint(
                self.ckpt_path,
                {
                    "student": self.student.state_dict(),
                    "teacher": self.teacher.state_dict(),
                    "optimizer": self.opt.state_dict(),
                    "prior": self.prior.detach().cpu(),
                    "curve_sum": self.curve_sum.cpu(),
                    "curve_cnt": self.curve_cnt.cpu(),
                    "epoch": epoch,
                    "history": json.dumps(self.history),
                    "rng": _rng_state(),
                    "config": json.dumps(self.cfg.to_dict(), sort_keys=True),
                    "fingerprint": json.dumps(self.fingerprint, sort_keys=True),
                },
            )
        self.dist.barrier()

    def finish(
        self, val_features: Any, save_probs: bool | None, show: bool, settings: dict | None, min_steps: int
    ) -> FitResult:
        """Pick the best head, predict with its teacher (rank 0), check health, write the outputs."""
        if not self.history:
            raise InvalidInputError("train: no epoch was run")
        history = self.history
        head_losses = np.asarray(history[-1]["head_losses"])
        best = int(head_losses.argmin())
        result = FitResult(
            best,
            head_losses,
            history,
            out_dir=self.out,
            resumed_from_epoch=self.start_epoch,
            total_steps=self.total_steps,
        )
        if self.is_main:
            vf = as_features(val_features) if val_features is not None else self.feats
            self._predict_and_write(result, vf, save_probs, show, settings, min_steps)
        self.dist.barrier()
        return result

    def _predict_and_write(
        self, result: FitResult, vf: Any, save_probs: bool | None, show: bool, settings: dict | None, min_steps: int
    ) -> None:
        cfg, dev, best, norm_in = self.cfg, self.dev, result.best_head, self.cfg.normalize_inputs
        want_probs = save_probs
        if want_probs is None:
            want_probs = int(vf.num_rows) * cfg.num_clusters * 4 <= 4 << 30
        top1, top5, probs = predict(
            self.teacher,
            vf,
            best,
            teacher_temp=cfg.teacher_temp,
            device=dev,
            with_probs=bool(want_probs),
            progress=show,
            normalize=norm_in,
        )
        result.top1, result.top5, result.probs = top1, top5, probs
        sizes = head_cluster_sizes(self.teacher, vf, device=dev, normalize=norm_in)
        cnt = self.curve_cnt.cpu().numpy()
        curve = [
            float(v) if c > 0 else None
            for v, c in zip((self.curve_sum[:, best] / self.curve_cnt.clamp_min(1)).cpu().numpy(), cnt)
        ]
        result.health = health_report(sizes, best, curve, self.total_steps, min_steps=min_steps, method=cfg.method)
        for msg in result.health["warnings"]:
            print(f"fit {cfg.method}: warning: {msg}", file=sys.stderr)
        if self.out is not None:
            write_predictions(
                self.out,
                top1,
                top5,
                probs,
                record_name="fit.json",
                record={
                    "method": cfg.method,
                    "config": cfg.to_dict(),
                    "settings": settings or {},
                    "steps_per_epoch": self.steps,
                    "total_steps": self.total_steps,
                    "best_head": best,
                    "head_losses": [float(v) for v in result.head_losses],
                    "health": result.health,
                    "history": self.history,
                    "world_size": self.world,
                    "num_train": self.n,
                    "num_predicted": int(vf.num_rows),
                    "files": ["top1.npy", "top5.npy"] + (["probs.npy"] if probs is not None else []),
                },
            )


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
    run = _Training(train_features, neighbors, config, device, out_dir)
    if resume:
        run.resume()
    run.wrap_distributed()
    show = (progress is not False) and run.is_main
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        for epoch in range(run.start_epoch, run.cfg.epochs):
            rec = run.run_epoch(epoch, pool, show)
            run.log_epoch(epoch, rec, progress)
            run.save_checkpoint(epoch)
            if on_epoch_end is not None:
                on_epoch_end(epoch, rec)
    finally:
        pool.shutdown(wait=True)
    return run.finish(val_features, save_probs, show, settings, min_steps)


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
