"""Default training settings of TEMI and SCANv2: the paper's, or adapted to the data's size.

**Paper regime.** On the paper's benchmarks at full size (a ``--benchmark`` is given and the
training set has at least half of its rows) every default is the paper's: batch 512 (TEMI) / 4096
(SCANv2), 50 epochs on the ImageNet-1K family, 25 on ImageNet-21K benchmarks, 32 heads, base lr 1e-4
per 256 (warm-up over 10% of the epochs, then cosine to 1e-6), k = 50, L2-normalised inputs. That
is ~125k TEMI steps on ImageNet-1K; the budget rule below changes nothing there.

**Adapted regime** (custom features, scaled or simulated stores, small real sets). The paper's
epochs at the paper's batch starve a small set (19 TEMI steps per epoch on 10,000 rows; 2 for
SCANv2), and the EMA teacher (momentum 0.996, a time constant of 250 steps) barely moves. The
rule, from the sensitivity study in ``benchmarks/methods_budget_study.py`` (docs/methods.md):

* batch ``B = min(paper batch, largest power of two <= N / MIN_STEPS_PER_EPOCH)`` (at least
  ``MIN_BATCH`` when N allows), so that an epoch has at least MIN_STEPS_PER_EPOCH steps;
* epochs ``E = max(paper epochs, ceil(MIN_STEPS / (N // B)))``, capped at ``MAX_EPOCHS``: at least
  MIN_STEPS optimizer steps in total;
* peak learning rate ``ADAPTED_PEAK_LR`` whatever the batch (``base_lr = peak * 256 / B``), held
  constant after the warm-up (``lr_schedule="constant"``, as the official TEMI README recipes);
* the cluster layer frozen for the first epoch (``freeze_last_layer_epochs=1``, the official default);
* k = ``clamp(round(N / (C * K_PER_CLASS_DIVISOR)), K_MIN, 50)`` neighbours: about a third of an
  average class, capped at the paper's 50; enough reach to tie each class together (on thin curved
  classes k = 5 leaves them in pieces, docs/methods.md "The demo").

Every explicit option overrides its default; the others are derived from it (an explicit batch
still gets the epochs that give MIN_STEPS). :func:`default_config` returns the configuration and a
record of every setting's value and source (``paper`` / ``adapted`` / ``option``) for ``fit.json``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidInputError
from .train_config import TEMI_DEFAULT_K, TrainConfig, paper_defaults

__all__ = [
    "ADAPTED_PEAK_LR",
    "MIN_STEPS",
    "MIN_STEPS_PER_EPOCH",
    "Recipe",
    "default_config",
    "is_paper_scale",
]

MIN_STEPS = 2000
MIN_STEPS_PER_EPOCH = 64
MIN_BATCH = 64
SCANV2_BATCH_PER_CLUSTER = 4
ADAPTED_HEADS = 8
ADAPTED_TEACHER_MOMENTUM = 0.99
MAX_EPOCHS = 2000
ADAPTED_PEAK_LR = 1e-3
ADAPTED_SCHEDULE = "constant"
ADAPTED_FREEZE_EPOCHS = 1.0
K_PER_CLASS_DIVISOR = 3
K_MIN = 5
#: a store with at least this fraction of its benchmark's training rows counts as full size
FULL_SIZE_FRACTION = 0.5

RULE = (
    f"batch = min(paper batch, max({MIN_BATCH}, pow2 <= N/{MIN_STEPS_PER_EPOCH}); SCANv2 also >= "
    f"{SCANV2_BATCH_PER_CLUSTER}C "
    f"while <= N/8); epochs = max(paper epochs, ceil({MIN_STEPS} / (N // batch))) (<= {MAX_EPOCHS}); peak lr "
    f"{ADAPTED_PEAK_LR:g} ({ADAPTED_SCHEDULE} after warm-up); teacher EMA momentum {ADAPTED_TEACHER_MOMENTUM}; "
    f"{ADAPTED_HEADS} heads; cluster layer frozen for {ADAPTED_FREEZE_EPOCHS:g} epoch; "
    f"k = clamp(N / (C * {K_PER_CLASS_DIVISOR}), {K_MIN}, {TEMI_DEFAULT_K})"
)


@dataclass
class Recipe:
    config: TrainConfig
    regime: str  # "paper" or "adapted"
    reason: str
    min_steps: int
    sources: dict[str, str] = field(default_factory=dict)  # field -> paper | adapted | option

    def settings(self) -> dict:
        """The record written to ``fit.json``: regime, reason, rule and each setting with its source."""
        cfg = self.config.to_dict()
        keys = (
            "batch_size",
            "epochs",
            "num_heads",
            "knn",
            "base_lr",
            "lr_schedule",
            "min_lr",
            "warmup_epochs",
            "teacher_momentum",
            "freeze_last_layer_epochs",
            "input_norm",
            "seed",
        )
        return {
            "regime": self.regime,
            "reason": self.reason,
            "rule": RULE if self.regime == "adapted" else "the paper's settings",
            "min_steps": self.min_steps,
            "peak_lr": self.config.lr,
            "effective": {k: {"value": cfg[k], "source": self.sources.get(k, "paper")} for k in keys},
        }

    def describe(self) -> str:
        c = self.config
        opt = [k for k, v in self.sources.items() if v == "option"]
        return (
            f"{c.method} settings ({self.regime}: {self.reason}): batch {c.batch_size}, {c.epochs} epochs, "
            f"{c.num_heads} heads, k {c.knn}, peak lr {c.lr:.3g} ({c.lr_schedule}), teacher momentum "
            f"{c.teacher_momentum}, cluster layer frozen {c.freeze_last_layer_epochs:g} epoch(s), inputs {c.input_norm}"
            + (f"; from options: {', '.join(sorted(opt))}" if opt else "")
        )


def is_paper_scale(num_train: int, benchmark: Any = None) -> bool:
    """True when ``benchmark`` (a loaded benchmark with ``num_train``) is given and the training set
    has at least ``FULL_SIZE_FRACTION`` of its rows."""
    total = getattr(benchmark, "num_train", None)
    return benchmark is not None and bool(total) and num_train >= FULL_SIZE_FRACTION * int(total)


def _pow2_floor(x: float) -> int:
    return 1 << max(0, int(math.floor(math.log2(max(x, 1.0)))))


def default_config(
    method: str,
    num_train: int,
    num_clusters: int,
    *,
    benchmark: Any = None,
    overrides: dict | None = None,
) -> Recipe:
    """The configuration ``fit`` uses for ``num_train`` rows and ``num_clusters`` clusters.

    ``benchmark``: a loaded benchmark (name, family, num_train) or None; ``overrides``: TrainConfig
    fields set explicitly (None values are ignored)."""
    if int(num_train) < 2:
        raise InvalidInputError(f"fit {method}: expected at least 2 training rows, found {num_train}")
    over = {k: v for k, v in (overrides or {}).items() if v is not None}
    bad = [k for k in over if k not in TrainConfig.__dataclass_fields__]
    if bad:
        raise InvalidInputError(f"fit {method}: expected TrainConfig fields, found {', '.join(bad)}")
    name = getattr(benchmark, "name", None) or ""
    if getattr(benchmark, "family", None) == "imagenet-1k":
        name = "imagenet-1k"
    cfg = paper_defaults(method, name or "in21k", int(num_clusters))
    n = int(num_train)
    sources: dict[str, str] = {}
    if is_paper_scale(n, benchmark):
        regime, reason, min_steps = "paper", f"benchmark {benchmark.name} at full size ({n:,} train rows)", 0
    else:
        regime = "adapted"
        what = (
            f"{n:,} train rows, {n / benchmark.num_train:.1%} of benchmark {benchmark.name}"
            if benchmark is not None
            else f"custom features, {n:,} train rows"
        )
        reason = f"{what}; the paper's batch/epochs would give {max(n // cfg.batch_size, 0) * cfg.epochs:,} steps"
        min_steps = MIN_STEPS
        batch = max(_pow2_floor(n / MIN_STEPS_PER_EPOCH), min(MIN_BATCH, _pow2_floor(n)))
        if method == "scanv2":  # the entropy term estimates the cluster marginal: B >> C where N allows
            batch = max(batch, min(_pow2_floor(SCANV2_BATCH_PER_CLUSTER * num_clusters - 1) * 2, _pow2_floor(n / 8)))
        batch = min(cfg.batch_size, batch, _pow2_floor(n))
        if batch != cfg.batch_size:
            cfg.batch_size, sources["batch_size"] = batch, "adapted"
        cfg.num_heads, sources["num_heads"] = ADAPTED_HEADS, "adapted"
        cfg.teacher_momentum, sources["teacher_momentum"] = ADAPTED_TEACHER_MOMENTUM, "adapted"
        cfg.base_lr, sources["base_lr"] = ADAPTED_PEAK_LR * 256.0 / batch, "adapted"
        cfg.lr_schedule, sources["lr_schedule"] = ADAPTED_SCHEDULE, "adapted"
        cfg.freeze_last_layer_epochs, sources["freeze_last_layer_epochs"] = ADAPTED_FREEZE_EPOCHS, "adapted"
        k = int(min(TEMI_DEFAULT_K, max(K_MIN, round(n / (num_clusters * K_PER_CLASS_DIVISOR)))))
        k = min(k, n - 1)
        if k != cfg.knn:
            cfg.knn, sources["knn"] = k, "adapted"
    for key, val in over.items():
        setattr(cfg, key, val)
        sources[key] = "option"
    if regime == "adapted":
        if "batch_size" in over and "base_lr" not in over:  # keep the peak lr for an explicit batch
            cfg.base_lr = ADAPTED_PEAK_LR * 256.0 / cfg.batch_size
        if "epochs" not in over:
            spe = max(n // cfg.batch_size, 1)
            epochs = min(MAX_EPOCHS, max(cfg.epochs, math.ceil(MIN_STEPS / spe)))
            if epochs != cfg.epochs:
                cfg.epochs, sources["epochs"] = epochs, "adapted"
    cfg.__post_init__()
    return Recipe(cfg, regime, reason, min_steps, sources)
