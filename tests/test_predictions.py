"""The predictions-folder format (write / read / integrity) and the metric specification."""

from __future__ import annotations

import hashlib
import json
import pickle

import numpy as np
import pytest

from in21k_bench.errors import InvalidInputError
from in21k_bench.evaluation.predictions import (
    PredictionTable,
    load_predictions,
    open_npy,
    read_prediction_folder,
    read_run_record,
    write_predictions,
)
from in21k_bench.scoring.metric_spec import LEADERBOARD_METRICS, METRIC_KEYS, METRICS, format_value, metric


def _arrays(n=40, K=7, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, K))
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    top5 = np.argsort(-p, axis=1)[:, :5]
    return top5[:, 0].copy(), top5, p.astype(np.float32)


def test_write_then_read_round_trip(tmp_path):
    top1, top5, probs = _arrays()
    rec = write_predictions(
        tmp_path / "run", top1.astype(np.int32), top5, probs, record={"method": "x", "seed": 3}, record_name="fit.json"
    )
    files = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert files == ["fit.json", "probs.npy", "top1.npy", "top5.npy"]  # no temp files left behind
    assert rec["method"] == "x" and set(rec["prediction_files"]) == {"top1.npy", "top5.npy", "probs.npy"}
    assert read_run_record(tmp_path / "run") == json.loads((tmp_path / "run" / "fit.json").read_text())
    arrays, sha = read_prediction_folder(tmp_path / "run")
    assert arrays.top1.dtype == np.int64 and (arrays.top1 == top1).all()
    assert (arrays.topk == top5).all() and np.array_equal(arrays.probs, probs)
    # the folder hash: sha256 of "name:sha256" lines in the order top1, top5, probs
    lines = "".join(
        f"{n}:{hashlib.sha256((tmp_path / 'run' / n).read_bytes()).hexdigest()}\n"
        for n in ("top1.npy", "top5.npy", "probs.npy")
    )
    assert sha == hashlib.sha256(lines.encode()).hexdigest()
    # one file: its own sha256
    write_predictions(tmp_path / "one", top1)
    _, sha1 = read_prediction_folder(tmp_path / "one")
    assert sha1 == hashlib.sha256((tmp_path / "one" / "top1.npy").read_bytes()).hexdigest()


def test_changed_file_after_the_run_is_detected(tmp_path):
    top1, top5, _ = _arrays()
    write_predictions(tmp_path, top1, top5)
    np.save(tmp_path / "top1.npy", (top1 + 1) % 7)
    with pytest.raises(InvalidInputError, match="expected top1.npy with the sha256 in its run record"):
        read_prediction_folder(tmp_path)
    (tmp_path / "top1.npy").unlink()
    with pytest.raises(InvalidInputError, match="listed in its run record"):
        read_prediction_folder(tmp_path)


def test_write_rejects_bad_arrays_before_writing(tmp_path):
    top1, top5, probs = _arrays()
    cases = [
        (dict(top1=top1.astype(float)), "expected top1 as int"),
        (dict(top1=top1, topk=top5[:, ::-1]), r"expected topk\[:, 0\] == top1"),
        (dict(top1=top1, topk=top5[:-1]), "same number of rows"),
        (dict(top1=top1, probs=probs.astype(np.int64)), "expected probs as float"),
    ]
    for kw, msg in cases:
        with pytest.raises(InvalidInputError, match=msg):
            write_predictions(tmp_path / "bad", **kw)
        assert not (tmp_path / "bad").exists()
    with pytest.raises(InvalidInputError, match="run record named"):
        write_predictions(tmp_path / "bad", top1, record_name="notes.json")


def test_read_rejects_wrong_kinds_and_pickles(tmp_path):
    top1, top5, probs = _arrays()
    np.save(tmp_path / "top1.npy", top5)
    with pytest.raises(InvalidInputError, match=r"expected top1.npy of shape \(N,\)"):
        read_prediction_folder(tmp_path)
    np.save(tmp_path / "top1.npy", top1)
    np.save(tmp_path / "top5.npy", top5[:-2])
    with pytest.raises(InvalidInputError, match="same number of rows"):
        read_prediction_folder(tmp_path)
    np.save(tmp_path / "top5.npy", probs)
    with pytest.raises(InvalidInputError, match=r"expected top5.npy as int \(N, k\)"):
        read_prediction_folder(tmp_path)
    (tmp_path / "p.npy").write_bytes(pickle.dumps(top1))
    with pytest.raises(InvalidInputError, match="pickled data"):
        open_npy(tmp_path / "p.npy")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInputError, match="found none"):
        load_predictions(tmp_path / "empty")
    import pandas as pd

    pd.DataFrame({"sample_id": ["a", "b"], "cluster": [0, 1]}).to_csv(tmp_path / "t.csv", index=False)
    table, sha = load_predictions(tmp_path / "t.csv")
    assert isinstance(table, PredictionTable) and list(table.frame["sample_id"]) == ["a", "b"]
    assert sha == hashlib.sha256((tmp_path / "t.csv").read_bytes()).hexdigest()


def test_metric_spec_is_consistent():
    assert len(set(METRIC_KEYS)) == len(METRICS)
    assert METRIC_KEYS[:6] == ("acc", "top1_L", "top5_1", "top5_L", "nmi", "ari")
    assert metric("ece").higher_is_better is False and all(m.higher_is_better for m in METRICS if m.key != "ece")
    assert "acc_temi_overcluster" not in [m.key for m in LEADERBOARD_METRICS]
    with pytest.raises(InvalidInputError, match="expected one of acc"):
        metric("accuracy")
    assert format_value(metric("acc"), 0.12345) == "12.35%"
    assert format_value(metric("nmi"), 0.5, 0.01) == "0.5000 +- 0.0100"
    assert format_value(metric("acc"), 0.5, 0.01) == "50.00% +- 1.00"
    assert format_value(metric("acc"), None) == "-" and format_value(metric("acc"), float("nan")) == "-"
