"""TEMI and SCANv2 against direct float64 loop implementations written from the formulas of docs/methods.md."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from in21k_bench.errors import InvalidInputError
from in21k_bench.methods.losses import scanv2_loss, temi_loss, uniform_prior


def _softmax(row, temp):
    m = max(row)
    e = [math.exp((v - m) / temp) for v in row]
    s = sum(e)
    return [v / s for v in e]


def _reference_temi(s, t, prior, beta=0.6, tau_s=0.1, tau_t=0.1, m=0.9):
    """Plain-python float64 loops over heads, samples and clusters."""
    H, N2, C = s.shape
    B = N2 // 2
    qs = [[_softmax(s[h, n], tau_s) for n in range(N2)] for h in range(H)]
    qt = [[_softmax(t[h, n], tau_t) for n in range(N2)] for h in range(H)]
    new_prior = np.zeros((H, C))
    for h in range(H):
        for c in range(C):
            mean = sum(qt[h][n][c] for n in range(N2)) / N2
            new_prior[h, c] = m * prior[h, c] + (1 - m) * mean
    weights = []
    for n in range(B):
        w = 0.0
        for j in range(H):
            w += sum(qt[j][n][c] * qt[j][B + n][c] for c in range(C))
        weights.append(w / H)
    per_head = []
    for h in range(H):
        total = 0.0
        for n in range(B):
            for a, b in ((n, B + n), (B + n, n)):  # student view a, teacher view b
                inner = sum((qs[h][a][c] * qt[h][b][c]) ** beta / new_prior[h, c] for c in range(C))
                total += -weights[n] * math.log(inner) / 2
        per_head.append(total / B)
    return sum(per_head) / H, per_head, new_prior


def _reference_scanv2(s, t, alpha=5.0, tau_s=0.1, tau_t=0.1):
    H, N2, C = s.shape
    B = N2 // 2
    per_head = []
    for h in range(H):
        qs = [_softmax(s[h, n], tau_s) for n in range(N2)]
        qt = [_softmax(t[h, n], tau_t) for n in range(N2)]
        cons = 0.0
        for n in range(B):
            for a, b in ((n, B + n), (B + n, n)):  # teacher on a, student on b
                cons += -math.log(sum(qt[a][c] * qs[b][c] for c in range(C))) / 2
        cons /= B
        ent = 0.0
        for rows in (range(0, B), range(B, N2)):
            for c in range(C):
                qhat = sum(qs[n][c] for n in rows) / B
                ent += qhat * math.log(qhat) / 2
        per_head.append(cons + alpha * ent)
    return sum(per_head) / H, per_head


@pytest.mark.parametrize("seed", [0, 1])
def test_temi_matches_reference(seed):
    rng = np.random.default_rng(seed)
    H, B, C = 3, 5, 7
    s = rng.normal(size=(H, 2 * B, C)) * 0.5
    t = rng.normal(size=(H, 2 * B, C)) * 0.5
    prior = rng.dirichlet(np.ones(C), size=H)
    ref, ref_heads, ref_prior = _reference_temi(s, t, prior)
    out = temi_loss(torch.tensor(s), torch.tensor(t), torch.tensor(prior))
    assert out.loss.item() == pytest.approx(ref, rel=1e-5)
    np.testing.assert_allclose(out.per_head.numpy(), ref_heads, rtol=1e-5)
    np.testing.assert_allclose(out.state.numpy(), ref_prior, rtol=1e-5)


def test_temi_prior_update_uses_new_prior_and_non_default_params():
    rng = np.random.default_rng(5)
    H, B, C = 2, 4, 5
    s = rng.normal(size=(H, 2 * B, C))
    t = rng.normal(size=(H, 2 * B, C))
    prior = rng.dirichlet(np.ones(C), size=H)
    ref, _, _ = _reference_temi(s, t, prior, beta=0.8, tau_s=0.2, tau_t=0.05, m=0.5)
    out = temi_loss(
        torch.tensor(s),
        torch.tensor(t),
        torch.tensor(prior),
        beta=0.8,
        student_temp=0.2,
        teacher_temp=0.05,
        prior_momentum=0.5,
    )
    assert out.loss.item() == pytest.approx(ref, rel=1e-5)


def test_temi_gradient_only_through_student():
    rng = np.random.default_rng(2)
    s = torch.tensor(rng.normal(size=(2, 8, 4)), requires_grad=True)
    t = torch.tensor(rng.normal(size=(2, 8, 4)), requires_grad=True)
    out = temi_loss(s, t, uniform_prior(2, 4).double())
    out.loss.backward()
    assert s.grad is not None and torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0
    assert t.grad is None


@pytest.mark.parametrize("seed", [0, 3])
def test_scanv2_matches_reference(seed):
    rng = np.random.default_rng(seed)
    H, B, C = 3, 6, 5
    s = rng.normal(size=(H, 2 * B, C)) * 0.5
    t = rng.normal(size=(H, 2 * B, C)) * 0.5
    ref, ref_heads = _reference_scanv2(s, t)
    out = scanv2_loss(torch.tensor(s), torch.tensor(t))
    assert out.loss.item() == pytest.approx(ref, rel=1e-5)
    np.testing.assert_allclose(out.per_head.numpy(), ref_heads, rtol=1e-5)
    ref2, _ = _reference_scanv2(s, t, alpha=2.0, tau_s=0.3, tau_t=0.07)
    out2 = scanv2_loss(torch.tensor(s), torch.tensor(t), alpha=2.0, student_temp=0.3, teacher_temp=0.07)
    assert out2.loss.item() == pytest.approx(ref2, rel=1e-5)


def test_scanv2_log_guard_with_empty_cluster():
    # A cluster no sample ever picks: qhat underflows to 0 in float32; the loss and gradient stay finite.
    s = torch.zeros(1, 8, 3)
    s[..., 2] = -1e4
    s.requires_grad_(True)
    t = torch.zeros(1, 8, 3)
    out = scanv2_loss(s, t)
    out.loss.backward()
    assert torch.isfinite(out.loss) and torch.isfinite(s.grad).all()


def test_float32_peaked_logits_are_finite():
    rng = np.random.default_rng(0)
    s = torch.tensor(rng.normal(size=(2, 8, 6)) * 50, dtype=torch.float32)
    t = torch.tensor(rng.normal(size=(2, 8, 6)) * 50, dtype=torch.float32)
    assert torch.isfinite(temi_loss(s, t, uniform_prior(2, 6)).loss)
    assert torch.isfinite(scanv2_loss(s, t).loss)


def test_bad_shapes_raise_one_line_errors():
    with pytest.raises(InvalidInputError, match="same shape"):
        scanv2_loss(torch.zeros(2, 4, 3), torch.zeros(2, 4, 4))
    with pytest.raises(InvalidInputError, match="even number"):
        scanv2_loss(torch.zeros(2, 5, 3), torch.zeros(2, 5, 3))
    with pytest.raises(InvalidInputError, match="prior"):
        temi_loss(torch.zeros(2, 4, 3), torch.zeros(2, 4, 3), torch.zeros(3, 3))
