"""TEMI and SCANv2 losses over batched heads (docs/methods.md, "Losses").

Both functions take the logits of all heads for a batch of pairs laid out as ONE tensor
``(H, 2B, C)``: rows ``[0, B)`` are the anchors ``x``, rows ``[B, 2B)`` their partners ``x'``.
Teacher logits never receive a gradient. Temperatures divide the logits before the softmax.

TEMI, for head ``i`` (beta = 0.6)::

    qtilde^i <- m * qtilde^i + (1 - m) * mean over the 2B rows of q_t^i        (m = 0.9, FIRST)
    w(x, x') = (1/H) sum_j sum_c q_t^j(c|x) q_t^j(c|x')                         (no gradient)
    L_i(x, x') = - w(x, x') * log sum_c (q_s^i(c|x) q_t^i(c|x'))^beta / qtilde^i(c)
    L_i = mean over the batch of (L_i(x, x') + L_i(x', x)) / 2;   loss = mean_i L_i

The prior uses the teacher probabilities of both views (as the TEMI reference code does).

SCANv2, for head ``i`` (alpha = 5)::

    L_i = mean over the batch of -(log sum_c q_t^i(c|x) q_s^i(c|x') + log sum_c q_t^i(c|x') q_s^i(c|x)) / 2
          + alpha * (1/2) sum_{views} sum_c qhat_s^i(c) log qhat_s^i(c)

with ``qhat_s`` the mean student probability over the batch of one view (anchors, then partners;
the two entropy terms are averaged, as in the reference code). The log is guarded by clamping
``qhat`` at ``eps``. Both are computed in log space (``logsumexp``), so they stay finite for
peaked distributions.

Distributed training: pass ``all_reduce`` (a function summing a tensor over ranks in place,
e.g. ``torch.distributed.all_reduce``) and ``world_size``. The TEMI prior and the SCANv2 marginal are
then computed over the GLOBAL batch. For the SCANv2 marginal the gradient flows through the local
rows only, and the entropy term's gradient is multiplied by ``world_size`` so that after
DistributedDataParallel averages the gradients it equals the single-process gradient of the
global-batch loss (the loss VALUE is unchanged).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch.nn import functional as F

from ..errors import InvalidInputError

__all__ = ["LossOutput", "scanv2_loss", "temi_loss", "uniform_prior"]

AllReduce = Callable[[torch.Tensor], object]


@dataclass
class LossOutput:
    loss: torch.Tensor  # scalar to call backward() on (mean over heads)
    per_head: torch.Tensor  # (H,) detached loss value of each head
    state: torch.Tensor  # TEMI: the updated prior (H, C); SCANv2: the batch marginal (H, C), detached


def uniform_prior(num_heads: int, num_clusters: int, device=None) -> torch.Tensor:
    """Initial TEMI cluster prior: uniform ``1/C`` for every head."""
    return torch.full((num_heads, num_clusters), 1.0 / num_clusters, dtype=torch.float32, device=device)


def _check(student: torch.Tensor, teacher: torch.Tensor) -> int:
    if student.dim() != 3 or student.shape != teacher.shape:
        raise InvalidInputError(
            f"loss: expected student and teacher logits of the same shape (H, 2B, C), "
            f"got {tuple(student.shape)} and {tuple(teacher.shape)}"
        )
    if student.shape[1] % 2:
        raise InvalidInputError(f"loss: expected an even number of rows (anchors + partners), got {student.shape[1]}")
    return student.shape[1] // 2


def _global_sum(x: torch.Tensor, all_reduce: AllReduce | None) -> torch.Tensor:
    if all_reduce is None:
        return x
    x = x.detach().clone()
    all_reduce(x)
    return x


def temi_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    prior: torch.Tensor,
    *,
    beta: float = 0.6,
    student_temp: float = 0.1,
    teacher_temp: float = 0.1,
    prior_momentum: float = 0.9,
    all_reduce: AllReduce | None = None,
    world_size: int = 1,
) -> LossOutput:
    """TEMI loss; returns the loss, per-head values and the updated prior (caller stores it)."""
    B = _check(student_logits, teacher_logits)
    H, _, C = student_logits.shape
    if prior.shape != (H, C):
        raise InvalidInputError(f"temi_loss: expected a prior of shape {(H, C)}, got {tuple(prior.shape)}")
    log_qs = F.log_softmax(student_logits.float() / student_temp, dim=-1)
    with torch.no_grad():
        log_qt = F.log_softmax(teacher_logits.float() / teacher_temp, dim=-1)
        qt = log_qt.exp()
        # 1. prior update BEFORE the loss, over the global batch of both views
        batch_sum = _global_sum(qt.sum(dim=1), all_reduce)
        batch_mean = batch_sum / (2 * B * world_size)
        new_prior = prior_momentum * prior.float() + (1.0 - prior_momentum) * batch_mean
        log_prior = new_prior.log()
        # 2. instance weight from the teacher, averaged over heads, shared by all heads
        weight = (qt[:, :B] * qt[:, B:]).sum(dim=-1).mean(dim=0)  # (B,)
    # 3. beta-PMI in both directions: student on one view, teacher on the other
    lp = log_prior.unsqueeze(1)
    pmi_xy = torch.logsumexp(beta * (log_qs[:, :B] + log_qt[:, B:]) - lp, dim=-1)  # (H, B)
    pmi_yx = torch.logsumexp(beta * (log_qs[:, B:] + log_qt[:, :B]) - lp, dim=-1)
    per_head = -(weight * (pmi_xy + pmi_yx)).mean(dim=1) / 2.0  # (H,)
    return LossOutput(per_head.mean(), per_head.detach(), new_prior)


def scanv2_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    *,
    alpha: float = 5.0,
    student_temp: float = 0.1,
    teacher_temp: float = 0.1,
    eps: float = 1e-8,
    all_reduce: AllReduce | None = None,
    world_size: int = 1,
) -> LossOutput:
    """SCANv2 loss; returns the loss, per-head values and the student batch marginal."""
    B = _check(student_logits, teacher_logits)
    log_qs = F.log_softmax(student_logits.float() / student_temp, dim=-1)
    with torch.no_grad():
        log_qt = F.log_softmax(teacher_logits.float() / teacher_temp, dim=-1)
    cons_xy = torch.logsumexp(log_qt[:, :B] + log_qs[:, B:], dim=-1)  # (H, B)
    cons_yx = torch.logsumexp(log_qt[:, B:] + log_qs[:, :B], dim=-1)
    consistency = -(cons_xy + cons_yx).mean(dim=1) / 2.0  # (H,)
    qs = log_qs.exp()
    local_sum = torch.stack([qs[:, :B].sum(dim=1), qs[:, B:].sum(dim=1)])  # (2, H, C)
    if all_reduce is not None:
        glob = _global_sum(local_sum, all_reduce)
        local_sum = local_sum + (glob - local_sum.detach())  # global value, local gradient
    qhat = local_sum / (B * world_size)
    neg_entropy = (qhat * qhat.clamp_min(eps).log()).sum(dim=-1).mean(dim=0)  # (H,)
    if world_size > 1:
        neg_entropy = world_size * neg_entropy - (world_size - 1) * neg_entropy.detach()
    per_head = consistency + alpha * neg_entropy
    return LossOutput(per_head.mean(), per_head.detach(), qhat.mean(dim=0).detach())
