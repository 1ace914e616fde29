"""Prediction files, validation (one-line errors via the CLI), and benchmark-bound evaluation."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linear_sum_assignment

import in21k_bench
from in21k_bench.cli import main
from in21k_bench.errors import InvalidInputError
from in21k_bench.evaluation.evaluator import EvaluationResult, PredictionArrays, evaluate
from in21k_bench.scoring.metrics import match_clusters

BENCH = "imagenet-1k"
N1K = 50_000


@pytest.fixture(scope="module")
def in1k():
    return in21k_bench.load(BENCH)


@pytest.fixture(scope="module")
def good_top5(in1k):
    rng = np.random.default_rng(0)
    labels = in1k.val_labels()
    perm = rng.permutation(1000)
    top1 = perm[labels]
    noise = rng.random(len(labels)) < 0.4
    top1[noise] = rng.integers(0, 1000, noise.sum())
    others = np.stack([(top1 + j) % 1000 for j in range(1, 5)], axis=1)
    return np.concatenate([top1[:, None], others], axis=1)


def run_cli(capsys, *argv):
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    try:
        main(list(map(str, argv)))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_one_line_error(capsys, path, *extra, bench=BENCH, contains=None):
    code, out, err = run_cli(capsys, "evaluate", path, "--benchmark", bench, *extra)
    assert code == 2, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"error: benchmark {bench}:"), lines[0]
    assert "expected" in lines[0] and "found" in lines[0], lines[0]
    assert "Traceback" not in err
    if contains:
        assert contains in lines[0], lines[0]
    return lines[0]


# ---------------------------------------------------------------------------------------------------
# correct inputs


def test_npy_formats_agree_and_match_dense(tmp_path, in1k, good_top5, capsys):
    labels = in1k.val_labels()
    top1 = good_top5[:, 0]
    np.save(tmp_path / "top1.npy", top1.astype(np.int32))
    np.save(tmp_path / "top5.npy", good_top5)
    r1 = evaluate(tmp_path / "top1.npy", BENCH)
    r5 = evaluate(tmp_path / "top5.npy", BENCH)
    rdir = evaluate(tmp_path, BENCH)  # folder with top1.npy + top5.npy
    d = np.zeros((1000, 1000))
    np.add.at(d, (labels, top1), 1)
    ri, ci = linear_sum_assignment(d, maximize=True)
    dense_acc = d[ri, ci].sum() / N1K
    assert r1.acc == pytest.approx(dense_acc) and r5.acc == r1.acc and rdir.acc == r1.acc
    assert r1.top5_1 is None and r5.top5_1 >= r5.acc and r5.k == 5
    assert rdir.top5_L == r5.top5_L
    assert r1.n == N1K and r1.num_clusters == 1000 and r1.benchmark == BENCH and r1.version == in1k.version
    import hashlib

    assert r5.predictions_sha256 == hashlib.sha256((tmp_path / "top5.npy").read_bytes()).hexdigest()
    # an in-memory array hashes like its np.save file
    assert evaluate(good_top5, BENCH).predictions_sha256 == r5.predictions_sha256

    code, out, err = run_cli(capsys, "evaluate", tmp_path / "top5.npy", "--benchmark", BENCH, "--json")
    assert code == 0, err
    js = json.loads(out)
    for key in (
        "benchmark",
        "version",
        "n",
        "num_clusters",
        "acc",
        "top1_L",
        "top5_1",
        "top5_L",
        "nmi",
        "ari",
        "package_version",
        "predictions_sha256",
        "matching",
    ):
        assert key in js
    assert js["acc"] == pytest.approx(dense_acc) and js["matching"] == "hungarian-one-to-one"
    assert "per_class_acc" not in js
    EvaluationResult.model_validate({**js})  # the JSON round-trips into the model
    code, out, _ = run_cli(capsys, "evaluate", tmp_path / "top5.npy", "--benchmark", BENCH)
    assert code == 0 and "ACC (top-1 -> 1, Hungarian)" in out and f"{100 * dense_acc:.2f}%" in out


def test_table_formats_match_by_id(tmp_path, in1k, good_top5):
    ids = in1k.val_sample_ids()
    ref = evaluate(good_top5, BENCH)
    order = np.random.default_rng(1).permutation(N1K)  # shuffled rows: matched by id, not position
    df = pd.DataFrame({"sample_id": ids[order], "cluster": good_top5[order, 0]})
    df.to_csv(tmp_path / "p.csv", index=False)
    assert evaluate(tmp_path / "p.csv", BENCH).acc == ref.acc
    df["topk"] = list(good_top5[order])
    df.to_parquet(tmp_path / "p.parquet")
    rp = evaluate(tmp_path / "p.parquet", BENCH)
    assert rp.acc == ref.acc and rp.top5_L == ref.top5_L and rp.k == 5
    wide = pd.DataFrame(
        {
            "sample_id": ids[order],
            "cluster": good_top5[order, 0],
            **{f"top{j + 1}": good_top5[order, j] for j in range(5)},
        }
    )
    wide.to_csv(tmp_path / "w.csv", index=False)
    assert evaluate(tmp_path / "w.csv", BENCH).top5_1 == ref.top5_1


def test_probabilities_small_K_with_plots(tmp_path, in1k, capsys):
    """Probabilities (N, K) with K = 20 < C: top-1/top-5/confidence derived; ECE checked directly."""
    rng = np.random.default_rng(2)
    labels = in1k.val_labels()
    logits = rng.normal(size=(N1K, 20)).astype(np.float32)
    logits[np.arange(N1K), labels % 20] += 3.0
    p = np.exp(logits - logits.max(1, keepdims=True))
    p = (p / p.sum(1, keepdims=True)).astype(np.float32)
    np.save(tmp_path / "probs.npy", p)
    code, out, err = run_cli(
        capsys, "evaluate", tmp_path / "probs.npy", "--benchmark", BENCH, "--json", "--plots", tmp_path / "plots"
    )
    assert code == 0, err
    js = json.loads(out)
    assert js["num_clusters"] == 20 and js["k"] == 5 and js["ece"] is not None
    assert (tmp_path / "plots" / "reliability.png").stat().st_size > 1000
    assert (tmp_path / "plots" / "per_class_accuracy.png").stat().st_size > 1000
    # direct ECE after the Hungarian map
    top1 = p.argmax(1)
    d = np.zeros((1000, 20))
    np.add.at(d, (labels, top1), 1)
    ri, ci = linear_sum_assignment(d, maximize=True)
    f = np.full(20, -1)
    f[ci] = ri
    correct = f[top1] == labels
    conf = p.max(1).astype(np.float64)
    e = 0.0
    for b in range(15):
        inb = (conf > b / 15) & (conf <= (b + 1) / 15)
        if inb.any():
            e += inb.mean() * abs(correct[inb].mean() - conf[inb].mean())
    assert js["acc"] == pytest.approx(correct.mean())
    assert js["ece"] == pytest.approx(e, abs=1e-9)
    assert js["majority_acc"] is not None  # K != C


def test_real1k_accepts_scored_rows_or_full_val(in1k):
    real = in21k_bench.load("real1k")
    rng = np.random.default_rng(3)
    full = rng.integers(0, 1000, N1K)
    full[::3] = in1k.val_labels()[::3]
    a = evaluate(full, "real1k", num_draws=4)
    b = evaluate(full[real.val_source_rows()], "real1k", num_draws=4)
    assert a.n == b.n == real.num_val and a.acc == b.acc and a.acc_std == b.acc_std
    assert a.num_draws == 4 and a.excluded == N1K - real.num_val
    with pytest.raises(InvalidInputError, match=r"expected 46837 rows \(scored ReaL images\) or 50000 rows"):
        evaluate(full[:1000], "real1k")


def test_real1k_protocol_against_direct_implementation_on_real_json(sources_dir):
    """Independent ReaL computation from the raw real.json: loops over the sets, dense assignment."""
    sets_all = json.loads((sources_dir / "imagenet-1k" / "real.json").read_text())
    scored = [i for i, s in enumerate(sets_all) if len(s)]
    sets = [sorted(sets_all[i]) for i in scored]
    n = len(sets)
    rng = np.random.default_rng(4)
    first = np.array([s[0] for s in sets])
    perm = rng.permutation(1000)
    top1 = perm[first]
    noise = rng.random(n) < 0.5
    top1[noise] = rng.integers(0, 1000, noise.sum())
    top5 = np.stack([top1] + [(top1 + 7 * j) % 1000 for j in range(1, 5)], axis=1)
    res = evaluate(top5, "real1k", num_draws=3)
    lengths = np.array([len(s) for s in sets])
    acc, t1l, t51, t5l = [], [], [], []
    for seed in range(3):
        u = np.random.default_rng(seed).random(n)
        draw = np.array([sets[i][min(int(u[i] * lengths[i]), lengths[i] - 1)] for i in range(n)])
        d = np.zeros((1000, 1000))
        np.add.at(d, (draw, top1), 1)
        ri, ci = linear_sum_assignment(d, maximize=True)
        # several maps can reach the optimum (ties); ACC is unique, the secondary metrics depend on which
        # optimal map is used, so they are recomputed here with the package's map after checking that it
        # is optimal
        m = match_clusters(top1, draw, 1000, 1000)
        assert m.agreements == d[ri, ci].sum()
        f = {int(c): int(r) for c, r in enumerate(m.cluster_to_label) if r >= 0}
        acc.append(np.mean([f.get(int(top1[i]), -1) == draw[i] for i in range(n)]))
        t1l.append(np.mean([f.get(int(top1[i]), -1) in sets[i] for i in range(n)]))
        t51.append(np.mean([any(f.get(int(c), -1) == draw[i] for c in top5[i]) for i in range(n)]))
        t5l.append(np.mean([any(f.get(int(c), -1) in sets[i] for c in top5[i]) for i in range(n)]))
    assert res.n == n
    assert res.acc == pytest.approx(np.mean(acc)) and res.acc_std == pytest.approx(np.std(acc))
    assert res.top1_L == pytest.approx(np.mean(t1l)) and res.top5_L == pytest.approx(np.mean(t5l))
    assert res.top5_1 == pytest.approx(np.mean(t51))


@pytest.mark.slow
def test_in21k_known_optimum_and_ancestor_sets():
    """Full IN-21K val (522,500 x C = 10,450): each label's own cluster is a strict row majority, so the
    optimum is known; top-1 -> L is checked against the taxonomy's ancestors directly."""
    b = in21k_bench.load("in21k")
    labels = b.val_labels()
    rng = np.random.default_rng(5)
    C = b.num_classes
    perm = rng.permutation(C)
    top1 = perm[labels]
    flip = (np.arange(len(labels)) % 50 >= 30) & (rng.random(len(labels)) < 0.5)
    tax = b.taxonomy
    parent = tax.parent[labels[flip]]  # predict the parent's cluster when there is one
    top1[flip] = np.where(parent >= 0, perm[np.maximum(parent, 0)], rng.integers(0, C, flip.sum()))
    r = evaluate(top1, "in21k")
    assert r.acc == pytest.approx(np.mean(top1 == perm[labels]))
    pred_label = np.argsort(perm)[top1]
    in_set = (pred_label == labels) | (tax.parent[labels] == pred_label)
    # ancestors further up can also be hit; the parent-or-self count is a lower bound that is attained here
    assert r.top1_L == pytest.approx(in_set.mean())


# ---------------------------------------------------------------------------------------------------
# malformed inputs: one line, exit code 2, benchmark named, expected vs found


def test_wrong_number_of_rows(tmp_path, capsys):
    np.save(tmp_path / "p.npy", np.zeros(49_999, dtype=np.int64))
    assert_one_line_error(capsys, tmp_path / "p.npy", contains="found 49999")


def test_wrong_ndim(tmp_path, capsys):
    np.save(tmp_path / "p.npy", np.zeros((N1K, 2, 2), dtype=np.int64))
    assert_one_line_error(capsys, tmp_path / "p.npy", contains="3-d")


def test_float_ids(tmp_path, capsys):
    np.save(tmp_path / "p.npy", np.zeros(N1K, dtype=np.float32))
    assert_one_line_error(capsys, tmp_path / "p.npy", contains="integer cluster ids")


def test_nan_ids_and_nan_probabilities(tmp_path, capsys):
    a = np.zeros(N1K)
    a[7] = np.nan
    np.save(tmp_path / "ids.npy", a)
    assert_one_line_error(capsys, tmp_path / "ids.npy", contains="NaN")
    p = np.full((N1K, 4), 0.25, dtype=np.float32)
    p[11, 2] = np.inf
    np.save(tmp_path / "probs.npy", p)
    assert_one_line_error(capsys, tmp_path / "probs.npy", contains="row 11")


def test_negative_ids(tmp_path, capsys):
    a = np.zeros(N1K, dtype=np.int64)
    a[3] = -1
    np.save(tmp_path / "p.npy", a)
    assert_one_line_error(capsys, tmp_path / "p.npy", contains="row 3")


def test_ids_not_below_K(tmp_path, capsys):
    a = np.zeros(N1K, dtype=np.int64)
    a[5] = 1000
    np.save(tmp_path / "p.npy", a)
    assert_one_line_error(capsys, tmp_path / "p.npy", "--num-clusters", "1000", contains="K=1000")
    # without --num-clusters, K is inferred (over-clustering is allowed)
    code, out, err = run_cli(capsys, "evaluate", tmp_path / "p.npy", "--benchmark", BENCH, "--json")
    assert code == 0 and json.loads(out)["num_clusters"] == 1001


def test_duplicate_in_topk_row(tmp_path, capsys, good_top5):
    a = good_top5.copy()
    a[9, 3] = a[9, 1]
    np.save(tmp_path / "p.npy", a)
    assert_one_line_error(capsys, tmp_path / "p.npy", contains="row 9")


def test_negative_probabilities(tmp_path, capsys):
    p = np.full((N1K, 4), 0.25)
    p[13] = [1.5, -0.5, 0, 0]
    np.save(tmp_path / "p.npy", p)
    assert_one_line_error(capsys, tmp_path / "p.npy", contains=">= 0")


def test_probabilities_not_summing_to_one(tmp_path, capsys):
    p = np.full((N1K, 4), 0.25, dtype=np.float32)
    p[17] = [0.3, 0.3, 0.3, 0.3]
    np.save(tmp_path / "p.npy", p)
    assert_one_line_error(capsys, tmp_path / "p.npy", contains="tolerance 0.001")
    p[17] = [0.25, 0.25, 0.25, 0.2505]  # within the stated tolerance
    np.save(tmp_path / "ok.npy", p)
    assert run_cli(capsys, "evaluate", tmp_path / "ok.npy", "--benchmark", BENCH)[0] == 0


def test_object_and_pickled_arrays(tmp_path, capsys):
    np.save(tmp_path / "obj.npy", np.array([1, "a", None] * 10, dtype=object), allow_pickle=True)
    assert_one_line_error(capsys, tmp_path / "obj.npy", contains="object")
    with open(tmp_path / "pick.npy", "wb") as f:
        pickle.dump(list(range(N1K)), f)
    assert_one_line_error(capsys, tmp_path / "pick.npy", contains="pickled")


def test_truncated_and_non_npy_files(tmp_path, capsys):
    np.save(tmp_path / "full.npy", np.zeros(N1K, dtype=np.int64))
    raw = (tmp_path / "full.npy").read_bytes()
    (tmp_path / "trunc.npy").write_bytes(raw[: len(raw) // 2])
    assert_one_line_error(capsys, tmp_path / "trunc.npy", contains="truncated")
    (tmp_path / "head.npy").write_bytes(raw[:40])
    assert_one_line_error(capsys, tmp_path / "head.npy", contains="header")
    (tmp_path / "text.npy").write_text("0\n1\n2\n")
    assert_one_line_error(capsys, tmp_path / "text.npy", contains="NUMPY magic")
    (tmp_path / "p.txt").write_text("0\n")
    assert_one_line_error(capsys, tmp_path / "p.txt", contains="'p.txt'")
    assert_one_line_error(capsys, tmp_path / "missing.npy", contains="found nothing")
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    assert_one_line_error(capsys, tmp_path / "bad.parquet", contains="unreadable")


def test_unknown_missing_and_duplicate_ids(tmp_path, capsys, in1k):
    ids = in1k.val_sample_ids()
    df = pd.DataFrame({"sample_id": ids, "cluster": np.zeros(N1K, dtype=np.int64)})
    bad = df.copy()
    bad.loc[4, "sample_id"] = "val/not_a_file.JPEG"
    bad.to_parquet(tmp_path / "unknown.parquet")
    assert_one_line_error(capsys, tmp_path / "unknown.parquet", contains="unknown")
    df.iloc[:-2].to_csv(tmp_path / "missing.csv", index=False)
    assert_one_line_error(capsys, tmp_path / "missing.csv", contains="2 missing")
    dup = df.copy()
    dup.loc[6, "sample_id"] = ids[5]
    dup.to_csv(tmp_path / "dup.csv", index=False)
    assert_one_line_error(capsys, tmp_path / "dup.csv", contains="duplicates")
    df.rename(columns={"cluster": "label"}).to_csv(tmp_path / "nocol.csv", index=False)
    assert_one_line_error(capsys, tmp_path / "nocol.csv", contains="'cluster'")
    df.drop(columns=["sample_id"]).to_csv(tmp_path / "noid.csv", index=False)
    assert_one_line_error(capsys, tmp_path / "noid.csv", contains="'sample_id'")
    fl = df.copy()
    fl["cluster"] = 0.5
    fl.to_csv(tmp_path / "float.csv", index=False)
    assert_one_line_error(capsys, tmp_path / "float.csv", contains="integer cluster ids")


def test_inconsistent_top1_and_topk(tmp_path, good_top5, capsys):
    np.save(tmp_path / "top1.npy", (good_top5[:, 0] + 1) % 1000)
    np.save(tmp_path / "top5.npy", good_top5)
    assert_one_line_error(capsys, tmp_path, contains="first ranked cluster")


def test_in21k_tables_need_ids(tmp_path, capsys):
    b = in21k_bench.load("in21k")
    pd.DataFrame({"sample_id": ["val/x/y.JPEG"], "cluster": [0]}).to_csv(tmp_path / "p.csv", index=False)
    assert_one_line_error(capsys, tmp_path / "p.csv", bench="in21k", contains="--val-ids")
    # canonical ids supplied by the user (e.g. a feature store's val/index.parquet), checked against class order
    sc = b.source_classes
    wn = np.repeat(sc["wnid"].to_numpy(dtype=str), sc["num_val"].to_numpy())
    j = np.tile(np.arange(50), b.num_classes)
    ids = np.char.add(np.char.add(np.char.add(np.char.add("val/", wn), "/"), wn), np.char.add("_", j.astype(str)))
    pd.DataFrame({"sample_id": ids[::-1]}).to_parquet(tmp_path / "rev.parquet")
    assert_one_line_error(
        capsys, tmp_path / "p.csv", "--val-ids", tmp_path / "rev.parquet", bench="in21k", contains="canonical order"
    )


def test_api_errors_are_invalid_input(in1k):
    with pytest.raises(InvalidInputError, match="benchmark imagenet-1k: expected top-1 ids"):
        evaluate(PredictionArrays(), BENCH)
    with pytest.raises(InvalidInputError, match="numeric"):
        evaluate(np.array(["a"] * N1K), BENCH)
    with pytest.raises(InvalidInputError, match="num-clusters"):
        evaluate(np.zeros(N1K, dtype=int), BENCH, num_clusters=0)


def test_package_level_evaluate_survives_submodule_import(good_top5):
    """``in21k_bench.evaluate`` must stay the function after ``in21k_bench.evaluate`` (the module) was
    imported, e.g. by the CLI. Needs ``from .evaluate import evaluate`` at import time in __init__.py."""
    import importlib

    import in21k_bench.cli  # noqa: F401  (imports the evaluate module)

    importlib.import_module("in21k_bench.evaluation.evaluator")
    assert callable(in21k_bench.evaluate), (
        "in21k_bench.evaluate was replaced by the submodule; import the function eagerly in __init__.py"
    )
    assert in21k_bench.evaluate(good_top5, BENCH).n == N1K


# ---------------------------------------------------------------------------------------------------
# fast paths used by evaluate(): per-label sets and the duplicate check


@pytest.mark.parametrize("name", ["imagenet-1k", "coarse-d3", "imbalanced-2k", "real1k"])
def test_per_label_sets_reproduce_label_sets(name):
    from in21k_bench.evaluation.evaluator import per_label_sets

    b = in21k_bench.load(name)
    A = per_label_sets(b)
    if b.definition.label_sets == "real":
        assert A is None  # per-sample sets: evaluate() keeps the N x C matrix
        return
    assert A.shape == (b.num_classes, b.num_classes)
    S = b.label_sets()
    assert (A[b.val_labels()] != S).nnz == 0


def test_row_duplicates_against_sort():
    from in21k_bench.evaluation.validation import row_duplicates as _row_duplicates

    rng = np.random.default_rng(4)
    for k in (1, 2, 5, 12, 13, 20):
        a = rng.integers(0, k * k // 2 + 2, (300, k))
        srt = np.sort(a, axis=1)
        want = (srt[:, 1:] == srt[:, :-1]).any(axis=1)
        assert k == 1 or (want.any() and not want.all())
        assert (_row_duplicates(a) == want).all()


def test_hierarchy_evaluate_equals_per_sample_sets_path():
    """evaluate() scores hierarchy sets through the C x C label matrix; the N x C per-sample path of
    compute_metrics must give the same numbers (``tiny``: IN-21K classes with up to 4 labels per set)."""
    from in21k_bench.scoring.metrics import compute_metrics

    b = in21k_bench.load("tiny")
    labels = b.val_labels()
    n, C = len(labels), b.num_classes
    A = b.label_matrix()
    # parent label = the deepest other member of the label's set (sets are ancestor chains)
    size = np.diff(A.indptr)
    par = np.full(C, -1)
    for lab in np.flatnonzero(size > 1):
        anc = [m for m in A.indices[A.indptr[lab] : A.indptr[lab + 1]] if m != lab]
        par[lab] = max(anc, key=lambda m: size[m])
    rng = np.random.default_rng(2)
    lab2clu = rng.permutation(C)
    pred = labels.copy()
    up = (par[labels] >= 0) & (rng.random(n) < 0.3)
    pred[up] = par[labels[up]]  # top-1 = the parent label's cluster: a hit in S_L, not in ACC
    cand = np.stack([pred] + [(labels + 7 * j) % C for j in range(1, 8)], axis=1)
    top5 = np.full((n, 5), -1)
    filled = np.zeros(n, dtype=int)
    for j in range(cand.shape[1]):
        new = (filled < 5) & ~(top5 == cand[:, j : j + 1]).any(axis=1)
        top5[np.flatnonzero(new), filled[new]] = cand[new, j]
        filled += new
    assert (filled == 5).all()
    top5 = lab2clu[top5]
    r = evaluate(top5, b)
    ref = compute_metrics(
        top5[:, 0], labels, num_classes=C, num_clusters=r.num_clusters, topk=top5, label_sets=b.label_sets()
    )
    assert r.top1_L > r.acc + 0.05  # ancestors really count
    for key in ("acc", "top1_L", "top5_1", "top5_L", "nmi", "ari"):
        assert getattr(r, key) == ref[key], key
