"""Label protocols: what each benchmark hands the evaluator, checked against its label sets directly."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import in21k_bench
from in21k_bench.evaluation.result import EvaluationResult
from in21k_bench.scoring.label_protocols import (
    FixedLabels,
    LabelAndAncestors,
    OwnLabel,
    PerSampleSets,
    RealSets,
    real_draws,
)
from in21k_bench.scoring.metric_spec import METRICS


@pytest.mark.parametrize("name,kind", [("imagenet-1k", OwnLabel), ("tiny", LabelAndAncestors), ("real1k", RealSets)])
def test_benchmark_protocol_membership_equals_label_sets(name, kind):
    b = in21k_bench.load(name)
    p = b.label_protocol()
    assert type(p) is kind and p.n == b.num_val and p.num_classes == b.num_classes
    S = b.label_sets().tocsr()
    labels = next(iter(p.draws(1)))
    assert len(labels) == b.num_val
    if kind is RealSets:
        assert p.repeated and p.num_empty == 0  # the manifest keeps only images with a ReaL set
        assert all(S[i, labels[i]] for i in range(0, b.num_val, 997))  # draws come from the sets
    else:
        assert not p.repeated and (labels == b.val_labels()).all()
    rng = np.random.default_rng(0)
    mapped = rng.integers(-1, b.num_classes, (b.num_val, 3))
    mapped[:, 0] = labels  # the drawn/own label is always in the set
    got = p.contains(labels, mapped)
    rows = np.repeat(np.arange(b.num_val), 3)
    want = (np.asarray(S[rows, np.maximum(mapped.ravel(), 0)]).ravel() & (mapped.ravel() >= 0)).reshape(-1, 3)
    assert (got == want).all() and got[:, 0].all() and not got[:, 1:].all()


def test_real1k_rows_of_the_full_imagenet_val_order():
    b = in21k_bench.load("real1k")
    p = b.label_protocol()
    assert (p.select_rows(50_000) == b.val_source_rows()).all()
    assert p.select_rows(b.num_val) is None and p.select_rows(123) is None
    assert p.source_excluded == 50_000 - b.num_val == 3163
    assert "46837 rows (scored ReaL images) or 50000 rows (full ImageNet-1K val order)" == p.row_hint("x")
    assert in21k_bench.load("imagenet-1k").label_protocol().select_rows(50_000) is None


def test_real1k_val_labels_are_the_original_labels_in_the_set_for_90_percent():
    """The documented fact: the original ImageNet-1K label is in the ReaL set of 90.0% of scored images."""
    b = in21k_bench.load("real1k")
    y = b.val_labels()
    inside = np.asarray(b.label_sets()[np.arange(len(y)), y]).ravel()
    assert int(inside.sum()) == 42_164 and len(y) == 46_837
    assert round(float(inside.mean()), 3) == 0.900


def test_generic_protocols():
    labels = np.array([0, 2, 1, 2])
    fl = FixedLabels(labels)
    assert fl.num_classes == 3 and not fl.has_sets and fl.contains(labels, labels[:, None]) is None
    assert FixedLabels(labels, 7).num_classes == 7
    S = sp.csr_matrix(np.array([[1, 1, 0], [0, 0, 1], [0, 1, 0], [1, 0, 1]], dtype=bool))
    ps = PerSampleSets(labels, S)
    assert ps.contains(labels, np.array([[1, 0], [2, -1], [0, 1], [0, 2]])).tolist() == [
        [True, True],
        [True, False],
        [False, True],
        [True, True],
    ]
    own = OwnLabel(labels, 3)
    assert own.contains(labels, np.array([0, 1, 1, -1])).tolist() == [True, False, True, False]
    assert (own.label_matrix().toarray() == np.eye(3, dtype=bool)).all()
    R = sp.csr_matrix(np.array([[1, 1, 0], [0, 0, 0], [0, 1, 1]], dtype=bool))
    rs = RealSets(R)
    assert rs.num_empty == 1 and rs.scored().tolist() == [True, False, True]
    draws = list(rs.draws(4))
    assert len(draws) == 4 and all(len(d) == 2 for d in draws)
    assert [d.tolist() for d in draws] == [d.tolist() for _, d in real_draws(R[[0, 2]], 4)]
    with pytest.raises(ValueError, match="square"):
        LabelAndAncestors(labels, sp.csr_matrix((3, 4), dtype=bool))


def test_result_fields_and_table_follow_the_metric_spec():
    fields = list(EvaluationResult.model_fields)
    keys = [m.key for m in METRICS]
    assert [f for f in fields if f in keys] == keys
    assert all(m.std_key in fields for m in METRICS)
    labels = np.arange(40) % 4
    r = in21k_bench.evaluate(np.arange(40) % 8, labels=labels)  # K = 8 > C = 4: every metric but ECE / -> L
    lines = r.table().splitlines()
    shown = [m.label for m in METRICS if any(line.strip().startswith(m.label) for line in lines)]
    assert shown == [m.label for m in METRICS]  # in spec order, the conditional one included (K > C)
    r = in21k_bench.evaluate(labels, labels=labels)
    assert "over-clustering" not in r.table() and r.acc == 1.0
