"""Clustering heads of the self-distillation framework (TEMI, SCANv2), batched over heads.

Each of the ``H`` heads is ``Linear(D, 512) - GELU - Linear(512, 256) - L2-normalise -
weight-normalised Linear(256, C, no bias)`` with a trainable per-cluster gain (docs/methods.md, "Heads").
All heads run as ONE tensor program:

* layer 1: the input is shared by every head, so the ``H`` first layers are one ``(B, D) x (D, H*512)``
  matrix product. The weights are stored as ``(D, H, 512)``, i.e. already in the layout of that GEMM:
  ``w1.view(D, H*512)`` is free (no per-step permute/copy of the 6.3 M weights, nor of their gradient);
* layer 2 and the cluster layer: ``torch.baddbmm`` / ``torch.bmm`` over the head dimension;
* weight normalisation: the direction ``V`` (``(H, 256, C)``) is divided by its per-cluster norm and
  multiplied by the gain ``g`` (``(H, C)``, initialised to 1) in one fused expression.

Output: logits of shape ``(H, B, C)`` (cosine similarity times gain; divide by the temperature
to get the softmax input). The teacher is a copy of the student whose parameters follow an
exponential moving average (:func:`ema_update`, :func:`teacher_momentum`).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn
from torch.nn import functional as F

HIDDEN_DIM = 512
BOTTLENECK_DIM = 256

__all__ = [
    "BOTTLENECK_DIM",
    "HIDDEN_DIM",
    "BatchedHeads",
    "ema_update",
    "make_teacher",
    "teacher_momentum",
]


class BatchedHeads(nn.Module):
    """``num_heads`` clustering heads evaluated together.

    Parameters (all stacked over heads): ``w1 (D, H, 512)`` (input dimension first, see the module
    docstring), ``b1 (H, 512)``, ``w2 (H, 512, 256)``,
    ``b2 (H, 256)``, ``v (H, 256, C)`` (weight-normalised direction of the cluster layer),
    ``g (H, C)`` (its gain). Weight decay applies to ``w1, w2, v`` only (:meth:`param_groups`).
    """

    def __init__(
        self,
        in_dim: int,
        num_clusters: int,
        num_heads: int = 32,
        hidden_dim: int = HIDDEN_DIM,
        bottleneck_dim: int = BOTTLENECK_DIM,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if min(in_dim, num_clusters, num_heads, hidden_dim, bottleneck_dim) < 1:
            raise ValueError("BatchedHeads: every dimension must be >= 1")
        self.in_dim = int(in_dim)
        self.num_clusters = int(num_clusters)
        self.num_heads = int(num_heads)
        self.hidden_dim = int(hidden_dim)
        self.bottleneck_dim = int(bottleneck_dim)
        H = self.num_heads
        self.w1 = nn.Parameter(torch.empty(in_dim, H, hidden_dim))
        self.b1 = nn.Parameter(torch.zeros(H, hidden_dim))
        self.w2 = nn.Parameter(torch.empty(H, hidden_dim, bottleneck_dim))
        self.b2 = nn.Parameter(torch.zeros(H, bottleneck_dim))
        self.v = nn.Parameter(torch.empty(H, bottleneck_dim, num_clusters))
        self.g = nn.Parameter(torch.ones(H, num_clusters))
        self.reset_parameters(generator)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Normal(0, 0.02) weights clipped at +-2 std, zero biases, unit gains (close to the
        DINO-head initialisation that the TEMI reference code inherits; drawn from ``generator``
        so that a seed fixes the initialisation)."""

        def trunc_normal(*shape: int) -> torch.Tensor:
            return torch.randn(shape, generator=generator).mul_(0.02).clamp_(-0.04, 0.04)

        H, D = self.num_heads, self.in_dim
        # drawn head by head (H, D, 512) and stored input-first, so a seed gives the same heads
        # whatever the storage layout
        self.w1.copy_(trunc_normal(H, D, self.hidden_dim).permute(1, 0, 2))
        self.w2.copy_(trunc_normal(*self.w2.shape))
        self.v.copy_(trunc_normal(*self.v.shape))
        self.b1.zero_()
        self.b2.zero_()
        self.g.fill_(1.0)

    def param_groups(self, weight_decay: float) -> list[dict]:
        """AdamW parameter groups: decay on weight matrices, none on biases and gains."""
        return [
            {"params": [self.w1, self.w2, self.v], "weight_decay": weight_decay},
            {"params": [self.b1, self.b2, self.g], "weight_decay": 0.0},
        ]

    def cluster_weight(self) -> torch.Tensor:
        """Effective cluster-layer weight ``g * v / ||v||`` of shape ``(H, 256, C)``."""
        return self.v * (self.g / self.v.norm(dim=1).clamp_min(1e-12)).unsqueeze(1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """L2-normalised bottleneck embeddings ``(H, B, 256)`` of inputs ``x (B, D)``."""
        if x.dim() != 2 or x.shape[1] != self.in_dim:
            raise ValueError(f"BatchedHeads: expected input (B, {self.in_dim}), got {tuple(x.shape)}")
        H, B = self.num_heads, x.shape[0]
        # Layer 1: one GEMM for all heads, (B, D) @ (D, H*512); both reshapes are views
        h = torch.addmm(self.b1.reshape(1, -1), x, self.w1.reshape(self.in_dim, H * self.hidden_dim))  # (B, H*512)
        h = F.gelu(h).view(B, H, self.hidden_dim).transpose(0, 1)  # (H, B, 512)
        # Layer 2: batched over heads.
        z = torch.baddbmm(self.b2.unsqueeze(1), h, self.w2)  # (H, B, 256)
        return F.normalize(z, dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(H, B, C)``."""
        return torch.bmm(self.embed(x), self.cluster_weight())

    def head_logits(self, x: torch.Tensor, head: int) -> torch.Tensor:
        """Logits ``(B, C)`` of one head only (prediction with the selected head)."""
        if not 0 <= head < self.num_heads:
            raise ValueError(f"BatchedHeads: head {head} out of range [0, {self.num_heads})")
        h = F.gelu(torch.addmm(self.b1[head], x, self.w1[:, head]))
        z = F.normalize(torch.addmm(self.b2[head], h, self.w2[head]), dim=-1)
        v = self.v[head]
        return z @ (v * (self.g[head] / v.norm(dim=0).clamp_min(1e-12)))


def make_teacher(student: BatchedHeads) -> BatchedHeads:
    """A frozen copy of the student (no gradients) to be updated by :func:`ema_update`."""
    teacher = copy.deepcopy(student)
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, momentum: float) -> None:
    """``teacher = momentum * teacher + (1 - momentum) * student`` for every parameter."""
    t_params = list(teacher.parameters())
    s_params = [p.detach() for p in student.parameters()]
    if len(t_params) != len(s_params):
        raise ValueError("ema_update: teacher and student have different parameter lists")
    torch._foreach_lerp_(t_params, s_params, 1.0 - float(momentum))


def teacher_momentum(step: int, total_steps: int, base: float = 0.996, final: float | None = None) -> float:
    """EMA momentum at ``step``: constant ``base``, or cosine from ``base`` to ``final``."""
    if final is None or final == base or total_steps <= 1:
        return float(base)
    t = min(max(step, 0), total_steps - 1) / (total_steps - 1)
    return float(final - (final - base) * (math.cos(math.pi * t) + 1.0) / 2.0)
