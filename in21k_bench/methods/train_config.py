"""Hyper-parameters of the head training (:class:`TrainConfig`), the paper's settings
(:func:`paper_defaults`) and the learning-rate schedule (:func:`lr_at`): warm-up, then cosine or constant."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from ..errors import InvalidInputError

__all__ = ["INPUT_NORMS", "LR_SCHEDULES", "METHODS", "TEMI_DEFAULT_K", "TrainConfig", "lr_at", "paper_defaults"]

METHODS = ("temi", "scanv2")
LR_SCHEDULES = ("cosine", "constant")
INPUT_NORMS = ("l2", "raw")
#: TEMI's number of neighbours: ``--knn`` defaults to 50 in the official TEMI code
#: (HHU-MMBS/TEMI-official-BMVC2023, ``main_args.py``), also used in its README commands.
TEMI_DEFAULT_K = 50


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
