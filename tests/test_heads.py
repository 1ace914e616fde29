"""Batched heads vs a per-head reference built from torch.nn layers; EMA teacher; schedules."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from in21k_bench.methods.heads import BatchedHeads, ema_update, make_teacher, teacher_momentum


def _per_head_reference(heads: BatchedHeads, x: torch.Tensor) -> torch.Tensor:
    """Each head as nn.Linear - GELU - nn.Linear - L2norm - weight-normalised nn.Linear (no bias)."""
    outs = []
    for h in range(heads.num_heads):
        l1 = nn.Linear(heads.in_dim, heads.hidden_dim).double()
        l2 = nn.Linear(heads.hidden_dim, heads.bottleneck_dim).double()
        last = nn.utils.parametrizations.weight_norm(nn.Linear(heads.bottleneck_dim, heads.num_clusters, bias=False))
        last = last.double()
        with torch.no_grad():
            l1.weight.copy_(heads.w1[:, h].T)
            l1.bias.copy_(heads.b1[h])
            l2.weight.copy_(heads.w2[h].T)
            l2.bias.copy_(heads.b2[h])
            last.parametrizations.weight.original0.copy_(heads.g[h].unsqueeze(1))
            last.parametrizations.weight.original1.copy_(heads.v[h].T)
        z = F.normalize(l2(F.gelu(l1(x))), dim=-1)
        outs.append(last(z))
    return torch.stack(outs)


def test_batched_forward_matches_per_head_modules():
    g = torch.Generator().manual_seed(0)
    heads = BatchedHeads(12, 7, num_heads=3, hidden_dim=16, bottleneck_dim=8, generator=g).double()
    with torch.no_grad():  # move away from the init so gains and biases matter
        for p in heads.parameters():
            p.add_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.3)
    x = torch.randn(10, 12, generator=g, dtype=torch.float64)
    out = heads(x)
    assert out.shape == (3, 10, 7)
    ref = _per_head_reference(heads, x)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    for h in range(3):
        torch.testing.assert_close(heads.head_logits(x, h), ref[h], rtol=1e-10, atol=1e-10)


def test_logits_are_bounded_by_gain_and_gradients_reach_every_parameter():
    heads = BatchedHeads(8, 5, num_heads=2, hidden_dim=8, bottleneck_dim=4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        heads.g.mul_(3.0)
    x = torch.randn(6, 8)
    out = heads(x)
    assert out.abs().max() <= 3.0 + 1e-5  # cosine * gain
    out.square().sum().backward()
    for name, p in heads.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_seeded_init_is_reproducible_and_param_groups_split_decay():
    a = BatchedHeads(8, 5, num_heads=2, generator=torch.Generator().manual_seed(3))
    b = BatchedHeads(8, 5, num_heads=2, generator=torch.Generator().manual_seed(3))
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    groups = a.param_groups(1e-4)
    decay = {id(p) for p in groups[0]["params"]}
    assert groups[0]["weight_decay"] == 1e-4 and groups[1]["weight_decay"] == 0.0
    assert decay == {id(a.w1), id(a.w2), id(a.v)}
    assert {id(p) for p in groups[1]["params"]} == {id(a.b1), id(a.b2), id(a.g)}


def test_bad_input_shape():
    heads = BatchedHeads(8, 5, num_heads=2)
    with pytest.raises(ValueError, match=r"expected input \(B, 8\)"):
        heads(torch.zeros(3, 9))


def test_ema_teacher():
    student = BatchedHeads(4, 3, num_heads=2, hidden_dim=4, bottleneck_dim=4)
    teacher = make_teacher(student)
    assert all(not p.requires_grad for p in teacher.parameters())
    before = [p.clone() for p in teacher.parameters()]
    with torch.no_grad():
        for p in student.parameters():
            p.add_(1.0)
    ema_update(teacher, student, 0.9)
    for t0, t, s in zip(before, teacher.parameters(), student.parameters()):
        torch.testing.assert_close(t, 0.9 * t0 + 0.1 * s)


def test_teacher_momentum_schedule():
    assert teacher_momentum(0, 100) == 0.996
    assert teacher_momentum(99, 100) == 0.996
    assert teacher_momentum(0, 100, 0.996, 1.0) == pytest.approx(0.996)
    assert teacher_momentum(99, 100, 0.996, 1.0) == pytest.approx(1.0)
    mid = teacher_momentum(50, 101, 0.996, 1.0)
    assert mid == pytest.approx(0.998)


def test_first_layer_weights_are_stored_in_gemm_layout_and_seeded_head_by_head():
    H, D, M = 3, 10, 6
    heads = BatchedHeads(D, 4, num_heads=H, hidden_dim=M, bottleneck_dim=5, generator=torch.Generator().manual_seed(7))
    assert heads.w1.shape == (D, H, M)
    gemm_w = heads.w1.reshape(D, H * M)  # the merged first-layer GEMM operand: a view, no copy
    assert gemm_w.data_ptr() == heads.w1.data_ptr() and gemm_w._base is heads.w1
    # initialisation = the head-by-head draw (H, D, M), then w2, then v, from the same generator
    g = torch.Generator().manual_seed(7)
    for name, shape in (("w1", (H, D, M)), ("w2", (H, M, 5)), ("v", (H, 5, 4))):
        want = torch.randn(shape, generator=g).mul_(0.02).clamp_(-0.04, 0.04)
        got = heads.w1.permute(1, 0, 2) if name == "w1" else getattr(heads, name)
        assert torch.equal(got, want), name
    x = torch.randn(7, D)
    heads(x).sum().backward()
    assert heads.w1.grad.shape == (D, H, M) and heads.w1.grad.is_contiguous()


def _load_benchmark():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "heads.py"
    spec = importlib.util.spec_from_file_location("_heads_benchmark", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_benchmark_baseline_is_the_same_function_and_script_checks_loss(capsys):
    import json

    bench = _load_benchmark()
    g = torch.Generator().manual_seed(0)
    batched = BatchedHeads(12, 7, num_heads=3, hidden_dim=16, bottleneck_dim=8, generator=g)
    with torch.no_grad():
        for p in batched.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.1)
    listed = bench.ModuleListHeads(batched)
    assert len(listed.heads) == 3
    x = torch.randn(10, 12, generator=g)
    torch.testing.assert_close(listed(x), batched(x), rtol=1e-5, atol=1e-6)
    # FLOPs from first principles, counted by hand for a tiny case: rows = 2 pairs = 4
    fl = bench.flops_per_step(H=2, D=3, C=5, pairs=2, hidden=4, bottleneck=2)
    fwd = 2 * 4 * 2 * (3 * 4 + 4 * 2 + 2 * 5)
    assert fl["student_forward"] == fwd == fl["teacher_forward"]
    assert fl["student_backward"] == 2 * fwd - 2 * 4 * 2 * 3 * 4
    rc = bench.main(
        [
            "--heads",
            "2",
            "--dim",
            "16",
            "--clusters",
            "5",
            "--batch",
            "8",
            "--steps",
            "2",
            "--rounds",
            "2",
            "--breakdown",
            "1",
            "--glibc-mmap",
            "--json",
        ]
    )
    res = json.loads(capsys.readouterr().out)
    assert rc == 0 and res["loss_ok"] and res["max_relative_loss_difference"] <= 1e-5
    assert res["config"]["large_allocations_from_heap"] is False
    assert set(res["pairs_per_second"]) == {"batched", "modulelist"} and res["speedup"] > 0
    assert len(res["speedup_rounds"]) == 2 and res["breakdown_seconds"]["gemm_only"] > 0
