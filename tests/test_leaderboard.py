"""Leaderboard: submission schema, seed entries vs the paper's table, submit, checks, rendering."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from pydantic import BaseModel

from conftest import PAPER_PREPROCESSING, run_cli
from in21k_bench import leaderboard as lb
from in21k_bench.fileio import sha256_file

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "leaderboard"


run = run_cli


# --------------------------------------------------------------------------------------------
# the issue's table, verbatim (accuracy in %): linear probe | k-means | TEMI | SCANv2
# --------------------------------------------------------------------------------------------
ISSUE_TABLE = """
| imagenet-1k | MAE-R ViT-H | 82.90 | 62.72 | 66.40 | 69.79 |
| imagenet-1k-odd | MAE-R ViT-H | 82.05 | 60.76 | 62.82 | 65.80 |
| imbalanced-2k | iBOT ViT-L (IN-21K) | 67.77 | 34.78 | 36.01 | 34.21 |
| centered-2k | iBOT ViT-L | 68.51 | 35.22 | 36.73 | 34.53 |
| wordnet-leaf | iBOT ViT-L | 56.92 | 27.43 | 28.08 | 24.56 |
| in21k-leaf | iBOT ViT-L | 55.31 | 26.66 | 27.31 | 23.58 |
| leaf-hzr | iBOT ViT-L | 52.25 | 24.48 | 24.56 | 22.72 |
| p-hzr | iBOT ViT-L | 49.90 | 24.27 | 24.50 | 21.83 |
| clip-1k | iBOT ViT-L | 95.77 | 55.05 | 63.29 | 62.90 |
| dinov2-1k | iBOT ViT-L | 95.74 | 54.24 | 61.21 | 61.06 |
| sup-1k | iBOT ViT-L | 95.96 | 55.35 | 62.52 | 62.65 |
| random-1k | iBOT ViT-L | 78.12 | 41.50 | 44.13 | 43.59 |
| imagenet-1k (iBOT) | iBOT ViT-L | 81.53 | 41.94 | 47.32 | 45.76 |
| union-1k | iBOT ViT-L | 94.62 | 52.14 | 59.40 | 57.95 |
| tiny | iBOT ViT-L | 76.98 | 40.96 | 42.46 | 41.99 |
| small | iBOT ViT-L | 63.71 | 32.02 | 33.38 | 30.99 |
| base | iBOT ViT-L | 56.53 | 28.24 | 29.36 | 26.19 |
| large | iBOT ViT-L | 52.04 | 26.01 | 26.70 | 23.40 |
| huge | iBOT ViT-L | 48.57 | 24.11 | 24.74 | 21.15 |
| coarse-d1 .. d8 | iBOT ViT-L | 51.56, 51.97, 51.48, 49.99, 48.74, 47.78, 47.19, 46.91 | 19.44, 20.13, 21.32, 22.30, 22.90, 23.22, 23.28, 23.35 | 18.65, 19.50, 21.04, 22.34, 23.32, 23.63, 23.66, 23.77 | 19.08, 19.85, 20.81, 21.27, 20.99, 20.77, 20.39, 20.29 |
| in21k | iBOT ViT-L | 46.72 | 23.38 | 23.74 | 20.27 |
"""  # noqa: E501 -- the issue's table, verbatim (parsed by the tests)
ISSUE_MULTILABEL = """
in21k with iBOT ViT-L: k-means 23.4/26.6/39.9/46.2,
TEMI 23.7/27.1/42.7/48.8, SCANv2 20.3/22.9/31.8/37.8, probe 47.3/51.3/76.4/79.8; real1k with MAE-R
ViT-H: k-means 62.6/68.2/78.2/83.1, TEMI 67.3/73.1/82.0/86.8, SCANv2 70.2/75.9/84.6/89.4, probe
81.1/88.2/94.4/97.3.
"""
METHOD_ORDER = ["Linear probe", "k-means", "TEMI", "SCANv2"]


def _issue_expectations():
    """{(benchmark, backbone kind, method): {metric: %}} parsed from the issue text above."""
    exp: dict[tuple[str, str, str], dict[str, float]] = {}
    for line in ISSUE_TABLE.strip().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        bench, backbone, values = cells[0], cells[1], cells[2:]
        kind = "mae" if backbone.startswith("MAE") else "ibot"
        if bench == "imagenet-1k (iBOT)":
            bench = "imagenet-1k"
        if bench.startswith("coarse-d1 .."):
            for mi, col in enumerate(values):
                for d, v in enumerate(col.split(",")):
                    exp[(f"coarse-d{d + 1}", kind, METHOD_ORDER[mi])] = {"acc": float(v)}
            continue
        for mi, v in enumerate(values):
            exp[(bench, kind, METHOD_ORDER[mi])] = {"acc": float(v)}
    text = " ".join(ISSUE_MULTILABEL.split())
    for block in text.split(";"):
        bench = "in21k" if "in21k with" in block else "real1k"
        kind = "ibot" if bench == "in21k" else "mae"
        for name, a, b, c, d in re.findall(
            r"(k-means|TEMI|SCANv2|probe) (\d+\.\d+)/(\d+\.\d+)/(\d+\.\d+)/(\d+\.\d+)", block
        ):
            method = "Linear probe" if name == "probe" else name
            m = exp.setdefault((bench, kind, method), {})
            m.setdefault("acc", float(a))
            m.update(top1_L=float(b), top5_1=float(c), top5_L=float(d))
    return exp


def test_seed_entries_match_issue_table():
    exp = _issue_expectations()
    assert len(exp) == (19 + 8 + 1) * 4 + 4  # 28 benchmark/backbone rows + real1k, four methods each
    seeds = lb.paper_seed_submissions()
    got = {(s.benchmark, "mae" if s.backbone.startswith("MAE") else "ibot", s.method): s for s in seeds}
    assert set(got) == set(exp)
    for key, metrics in exp.items():
        s = got[key]
        assert set(s.metrics) == set(metrics), key
        for name, pct in metrics.items():
            # stored as fractions in [0, 1]
            assert s.metrics[name].mean == pytest.approx(pct / 100, abs=1e-12), (key, name)
            assert s.metrics[name].std is None and s.metrics[name].runs == []
        assert s.status == "reported" and "arXiv:2406.01203" in s.source
        assert s.paper_url == lb.PAPER_URL
        assert s.supervised == (s.method == "Linear probe")
        # clustering: mean of 3 runs; linear probe: best of a grid (appendix C.3), one value
        if s.supervised:
            assert s.num_runs == 1 and "best value over a learning-rate x weight-decay grid (appendix C.3)" in s.source
            assert "mean of 3" not in s.source
        else:
            assert s.num_runs == 3 and "mean of 3 independent runs" in s.source
        assert "main results" not in s.source and re.search(r"Table [1-5]", s.source)
        # the paper's coarse, Centered-2K and WordNet-leaf sets are reproduced exactly by manifest v2
        assert s.benchmark_version == ("v2" if s.benchmark in V2_SEEDS else "v1"), s.benchmark
    # the only disagreement between the two tables is recorded
    noted = [s for s in seeds if s.notes]
    assert [(s.benchmark, s.method) for s in noted] == [("in21k", "Linear probe")]
    assert "47.3" in noted[0].notes


V2_SEEDS = {f"coarse-d{d}" for d in range(1, 9)} | {"centered-2k", "wordnet-leaf"}


def test_committed_seed_files_are_the_seed_entries(tmp_path):
    lb.write_seed_submissions(tmp_path)
    for new in lb.submission_files(tmp_path):
        committed = COMMITTED / new.relative_to(tmp_path)
        assert committed.is_file(), committed
        assert lb.load_submission(committed) == lb.load_submission(new)


def test_committed_leaderboard_passes_check():
    assert lb.check_leaderboard(COMMITTED) == []


# --------------------------------------------------------------------------------------------
# schema
# --------------------------------------------------------------------------------------------

SHA = "a" * 64


def _verified(**over):
    d = dict(
        method="TEMI",
        slug="temi-test",
        backbone="DINOv2 ViT-B",
        benchmark="tiny",
        benchmark_version="v1",
        package_version="0.1.0",
        num_runs=2,
        predictions_sha256=[SHA, "b" * 64],
        predictions=["temi-test/run-1.npy", "hf://datasets/org/preds@v1/temi/run-2.npy"],
        metrics={"acc": {"mean": 0.5, "std": float(np.std([0.4, 0.6], ddof=1)), "runs": [0.4, 0.6]}},
        status="verified",
        date="2025-01-02",
    )
    d.update(over)
    return d


def test_schema_accepts_a_valid_record_and_roundtrips():
    s = lb.Submission.model_validate(_verified())
    assert lb.Submission.model_validate(json.loads(json.dumps(s.to_json_dict()))) == s


@pytest.mark.parametrize(
    "over, fragment",
    [
        ({"extra_field": 1}, "extra_field"),
        ({"slug": "Bad Slug"}, "slug"),
        ({"predictions_sha256": [SHA]}, "one predictions_sha256 per run"),
        ({"predictions_sha256": [SHA, "xyz"]}, "64 lower-case hex"),
        ({"metrics": {"acc": {"mean": 0.5, "std": 0.5, "runs": [0.4, 0.6]}}}, "ddof=1"),
        ({"metrics": {"acc": {"mean": 0.55, "std": None, "runs": [0.4, 0.6]}}}, "not the mean"),
        ({"metrics": {"acc": {"mean": 50.0, "std": 0.0, "runs": [50.0, 50.0]}}}, "fractions, not %"),
        ({"metrics": {"nmi": {"mean": 0.5, "std": 0.0, "runs": [0.5, 0.5]}}}, "ranking metric"),
        ({"metrics": {"acc": {"mean": 0.5, "std": 0.0, "runs": [0.5, 0.5]}, "f1": {"mean": 0.1}}}, "f1"),
        ({"package_version": None}, "package_version"),
        ({"benchmark_version": "1"}, "benchmark_version"),
        ({"status": "reported", "predictions_sha256": []}, "source"),
        ({"paper_url": "ftp://x"}, "http(s) URL"),
        ({"predictions": []}, "verified entry: expected one prediction file location per run"),
        ({"predictions": ["a.npy"]}, "one predictions path per run"),
        (
            {"predictions": ["a.npy", "hf://datasets/org@v1/x.npy"]},
            "expected a hub path hf://datasets/ORG/NAME@REVISION/PATH",
        ),
        ({"status": "unchecked", "package_version": None}, "unchecked entry: expected the package_version"),
    ],
)
def test_schema_rejects(over, fragment, tmp_path):
    p = tmp_path / "x.json"
    p.write_text(json.dumps(_verified(**over)))
    with pytest.raises(lb.InvalidSubmissionError) as e:
        lb.load_submission(p)
    msg = str(e.value)
    assert fragment in msg and "\n" not in msg


def test_metricstat_from_runs_uses_ddof1():
    m = lb.MetricStat.from_runs([0.2, 0.3, 0.7])
    assert m.mean == pytest.approx(0.4) and m.std == pytest.approx(np.std([0.2, 0.3, 0.7], ddof=1))
    assert lb.MetricStat.from_runs([0.3]).std is None


def test_slugify():
    assert lb.slugify("iBOT ViT-L (IN-21K)") == "ibot-vit-l-in-21k"
    assert lb.slugify("k-means") == "k-means"


# --------------------------------------------------------------------------------------------
# submit and check with a stand-in evaluator (file formats are the evaluator's business)
# --------------------------------------------------------------------------------------------


class FakeResult(BaseModel):
    benchmark: str
    version: str
    n: int
    num_clusters: int
    acc: float
    nmi: float
    top5_1: float | None = None
    ece: float | None = None
    package_version: str = "0.1.0"
    predictions_sha256: str
    provenance: dict | None = None


#: A complete provenance record (what `evaluate` reports for a folder written by `fit` on an extracted store).
FAKE_BACKBONE = {
    "name": "vit-x",
    "spec": "timm:vit_x",
    "loader": "timm",
    "weights": "vit_x.tag",
    "checkpoint_sha256": None,
    "pretrained": True,
    "dim": 8,
}
FAKE_PREPROCESSING = PAPER_PREPROCESSING


def fake_provenance(benchmark, version):
    from in21k_bench.evaluation.provenance import provenance_record

    return provenance_record(
        benchmark=benchmark, version=version, backbone=FAKE_BACKBONE, preprocessing=FAKE_PREPROCESSING
    )


def fake_evaluate(pred, benchmark, version):
    """Accuracy = fraction of ids equal to their position mod 4 (a deterministic function of the file)."""
    x = np.load(pred, allow_pickle=False)
    return FakeResult(
        benchmark=benchmark,
        version=version or "v1",
        n=len(x),
        num_clusters=4,
        acc=float(np.mean(x == np.arange(len(x)) % 4)),
        nmi=float(np.mean(x) / 3),
        predictions_sha256=sha256_file(pred),
        provenance=fake_provenance(benchmark, version or "v1"),
    )


@pytest.fixture
def fake_eval(monkeypatch):
    monkeypatch.setattr(lb.scores, "evaluate_predictions", fake_evaluate)


@pytest.fixture
def runs(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(3):
        x = np.arange(100) % 4
        flip = rng.random(100) < 0.1 * (i + 1)
        x[flip] = rng.integers(0, 4, flip.sum())
        p = tmp_path / f"run{i}.npy"
        np.save(p, x)
        paths.append(p)
    return paths


def test_submit_records_mean_std_and_hashes(fake_eval, runs, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "lbroot"
    code, out, err = run(
        [
            "submit",
            *map(str, runs),
            "--benchmark",
            "tiny",
            "--method",
            "My Method",
            "--backbone",
            "ViT-X",
            "--authors",
            "A. One, B. Two",
            "--root",
            str(root),
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    rec = json.loads(out)
    path = root / "submissions" / "tiny" / "my-method-vit-x.json"
    assert path.is_file() and lb.load_submission(path).to_json_dict() == rec
    accs = [fake_evaluate(p, "tiny", "v1").acc for p in runs]
    assert rec["metrics"]["acc"]["runs"] == accs
    assert rec["metrics"]["acc"]["mean"] == pytest.approx(np.mean(accs))
    assert rec["metrics"]["acc"]["std"] == pytest.approx(np.std(accs, ddof=1))
    assert "ece" not in rec["metrics"] and "top5_1" not in rec["metrics"]  # None is not a metric value
    assert rec["predictions_sha256"] == [sha256_file(p) for p in runs]
    assert rec["predictions"] == [f"run{i}.npy" for i in range(3)]
    assert rec["authors"] == ["A. One", "B. Two"] and rec["status"] == "verified" and rec["num_runs"] == 3
    # the same method/backbone again: refused (new slug) / refused (same slug without --overwrite)
    code, _, err = run(
        [
            "submit",
            str(runs[0]),
            "-b",
            "tiny",
            "-m",
            "my method",
            "--backbone",
            "ViT-X",
            "--slug",
            "other",
            "--root",
            str(root),
        ],
        capsys,
    )
    assert code == 2 and "found the same in my-method-vit-x.json" in err and err.count("\n") == 1
    code, _, err = run(
        ["submit", str(runs[0]), "-b", "tiny", "-m", "My Method", "--backbone", "ViT-X", "--root", str(root)], capsys
    )
    assert code == 2 and "--overwrite" in err
    # checks pass on it (README not rendered yet -> only that is reported); build then check is clean
    problems = lb.check_leaderboard(root)
    assert len(problems) == 2 and all("out of date" in p for p in problems)
    lb.build(root)
    assert lb.check_leaderboard(root) == []


def test_submit_errors(fake_eval, runs, tmp_path, capsys):
    code, _, err = run(
        ["submit", str(tmp_path / "missing.npy"), "-b", "tiny", "-m", "M", "--root", str(tmp_path)], capsys
    )
    assert code == 2 and "no file at" in err
    code, _, err = run(["submit", str(runs[0]), "-b", "tinyy", "-m", "M", "--root", str(tmp_path)], capsys)
    assert code == 2 and "did you mean tiny" in err
    code, _, err = run(["submit", str(runs[0]), str(runs[0]), "-b", "tiny", "-m", "M", "--root", str(tmp_path)], capsys)
    assert code == 2 and "same file twice" in err
    code, _, err = run(
        ["submit", str(runs[0]), "-b", "tiny", "-m", "M", "--version", "v7", "--root", str(tmp_path)], capsys
    )
    assert code == 2 and "v7" in err


def _seed_version(benchmark: str) -> str:
    return next(s.benchmark_version for s in lb.paper_seed_submissions() if s.benchmark == benchmark)


def _lb_with_verified(tmp_path, runs):
    """A leaderboard with the seeds plus one verified entry whose predictions sit in its sidecar folder."""
    root = tmp_path / "lb"
    lb.write_seed_submissions(root)
    side = root / "submissions" / "tiny" / "mine"
    side.mkdir(parents=True)
    copies = []
    for p in runs:
        shutil.copy(p, side / p.name)
        copies.append(side / p.name)
    # at the seeds' version, so the verified entry and the reported ones share a section
    sub, path = lb.submit(
        copies, benchmark="tiny", method="Mine", slug="mine", root=root, version=_seed_version("tiny")
    )
    lb.build(root)
    assert lb.check_leaderboard(root) == []
    return root, path, side


def test_check_reevaluates_present_predictions(fake_eval, runs, tmp_path, monkeypatch):
    root, path, side = _lb_with_verified(tmp_path, runs)
    monkeypatch.chdir(tmp_path)  # recorded paths are relative to the submit-time folder; sidecar lookup still works
    assert lb.check_leaderboard(root, check_rendered=False) == []
    # tamper a per-run metric consistently (mean/std recomputed) -> only the re-evaluation catches it
    d = json.loads(path.read_text())
    d["metrics"]["acc"] = lb.MetricStat.from_runs([0.99, *d["metrics"]["acc"]["runs"][1:]]).model_dump()
    path.write_text(json.dumps(d))
    problems = lb.check_leaderboard(root, check_rendered=False)
    assert len(problems) == 1 and "run 1 metric acc expected" in problems[0] and "re-evaluated" in problems[0]
    assert lb.check_leaderboard(root, check_rendered=False, reevaluate=False) == []
    # a replaced prediction file: sha256 mismatch
    np.save(side / "run1.npy", np.zeros(100, dtype=np.int64))
    problems = lb.check_leaderboard(root, check_rendered=False)
    assert any("run 2 prediction file" in p and "sha256" in p for p in problems)
    # prediction files above the size limit
    problems = lb.check_leaderboard(root, check_rendered=False, max_prediction_bytes=10)
    assert any("expected <= 10 bytes" in p for p in problems)


def test_check_catches_bad_submissions(fake_eval, runs, tmp_path, capsys):
    root, path, _ = _lb_with_verified(tmp_path, runs)
    sub_dir = root / "submissions"
    # 1) duplicate method/backbone on the same benchmark version under another slug
    d = json.loads(path.read_text())
    d["slug"] = "mine-again"
    (sub_dir / "tiny" / "mine-again.json").write_text(json.dumps(d))
    # 2) wrong folder for its benchmark
    d2 = json.loads((sub_dir / "tiny" / "k-means-ibot-vit-l-in-21k.json").read_text())
    (sub_dir / "small" / "k-means-ibot-vit-l-in-21k-x.json").write_text(
        json.dumps(dict(d2, slug="k-means-ibot-vit-l-in-21k-x", method="KM2"))
    )
    # 3) unknown benchmark version
    (sub_dir / "huge" / "v9.json").write_text(
        json.dumps(dict(d2, benchmark="huge", slug="v9", benchmark_version="v9", method="X"))
    )
    # 4) not JSON, 5) extra key, 6) oversize
    (sub_dir / "base" / "broken.json").write_text("{not json")
    (sub_dir / "base" / "extra.json").write_text(
        json.dumps(dict(d2, benchmark="base", slug="extra", method="Y", hello=1))
    )
    (sub_dir / "base" / "big.json").write_text(
        json.dumps(dict(d2, benchmark="base", slug="big", method="Z", notes="x" * 70000))
    )
    code, out, err = run(["leaderboard", "check", "--root", str(root)], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert all(line.startswith("error: ") for line in lines)
    joined = "\n".join(lines)
    assert "found a duplicate of mine-again.json" in joined  # files are visited in sorted order
    assert "expected to be in submissions/tiny/" in joined
    assert "expected a version in ['v1', 'v2'], found 'v9'" in joined
    assert "expected JSON, found a syntax error" in joined
    assert "hello: Extra inputs are not permitted" in joined
    assert "expected <= 65536 bytes" in joined
    assert len(lines) == 6
    code, out, _ = run(["leaderboard", "check", "--root", str(root), "--json"], capsys)
    assert code == 2 and json.loads(out)["ok"] is False and len(json.loads(out)["problems"]) == 6


# --------------------------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------------------------


def test_markdown_best_first_and_status_apart(fake_eval, runs, tmp_path):
    root, _, _ = _lb_with_verified(tmp_path, runs)
    text = (root / "README.md").read_text()
    assert text == lb.render_markdown(lb.load_submissions(root))  # deterministic
    section = text.split(f"## tiny ({_seed_version('tiny')})")[1].split("\n## ")[0]
    verified, reported = section.split("### Verified")[1].split("### Reported")
    assert "Mine" in verified and "Mine" not in reported and "TEMI" in reported
    rows = [r for r in reported.splitlines() if r.startswith("| ") and not r.startswith("| #")]
    ranks = [r.split("|")[1].strip() for r in rows]
    accs = [float(r.split("|")[4].strip()) for r in rows]
    assert ranks == ["1", "2", "3", "UB"]  # supervised upper bound after the clustering methods
    assert accs[:3] == sorted(accs[:3], reverse=True) == [42.46, 41.99, 40.96]
    assert "## Sources of reported entries" in text and "arXiv:2406.01203" in text
    # registry order: in21k before tiny before imagenet-1k
    heads = [f"## {b} ({_seed_version(b)})" for b in ("in21k", "tiny", "imagenet-1k")]
    assert text.index(heads[0]) < text.index(heads[1]) < text.index(heads[2])


def test_html_is_self_contained_and_embeds_data():
    subs = lb.paper_seed_submissions()
    subs[0] = subs[0].model_copy(update={"method": "</script><b>evil</b>"})
    page = lb.render_html(subs)
    assert page.count("</script>") == 1  # only the real closing tag: embedded text cannot end the script
    assert not re.search(r"<(link|img|iframe)\b|\bsrc=|@import|url\(", page)
    assert "default-src 'none'" in page  # CSP: the page cannot load anything from the network
    m = re.search(r"const DATA = (\{.*?\});\n", page, re.S)
    data = json.loads(m.group(1))
    assert len(data["entries"]) == len(subs)
    assert data["entries"][0]["method"] == "</script><b>evil</b>" or any(
        e["method"].startswith("</script>") for e in data["entries"]
    )
    fams = {cf["family"]: cf["benchmarks"] for cf in data["chart_families"]}
    assert fams["frequency"] == ["tiny", "small", "base", "large", "huge"]
    assert fams["coarse"][:8] == [f"coarse-d{d}" for d in range(1, 9)]


def test_build_cli_writes_files(tmp_path, capsys):
    lb.write_seed_submissions(tmp_path)
    code, out, _ = run(["leaderboard", "build", "--root", str(tmp_path), "--json"], capsys)
    assert code == 0
    info = json.loads(out)
    assert info["submissions"] == 116
    assert (tmp_path / "README.md").is_file() and (tmp_path / "site" / "index.html").is_file()
    schema = json.loads((tmp_path / "submission.schema.json").read_text())
    assert schema["additionalProperties"] is False
    code, out, _ = run(["leaderboard", "check", "--root", str(tmp_path)], capsys)
    assert code == 0 and out.startswith("ok: 116 submissions")


# --------------------------------------------------------------------------------------------
# with the real evaluator: a submitted entry's metrics equal `in21k-bench evaluate`
# --------------------------------------------------------------------------------------------


def _real_runs(tmp_path, n_runs=2):
    import in21k_bench

    b = in21k_bench.load("imagenet-1k")
    labels = b.val_labels()
    rng = np.random.default_rng(1)
    perm = rng.permutation(b.num_classes)  # clusters are a relabelling of the classes ...
    paths = []
    for i in range(n_runs):
        top1 = perm[labels].copy()
        noisy = rng.random(len(labels)) < 0.3 + 0.1 * i  # ... with noise
        top1[noisy] = rng.integers(0, b.num_classes, noisy.sum())
        step = rng.integers(1, b.num_classes // 5, (len(labels), 1))  # 4 * step < C: distinct in a row
        top5 = (top1[:, None] + np.arange(5) * step) % b.num_classes
        p = tmp_path / f"preds-{i}.npy"
        np.save(p, top5)
        paths.append(p)
    return paths


def test_submit_equals_evaluate_with_real_evaluator(tmp_path, capsys, monkeypatch):
    pytest.importorskip("in21k_bench.evaluation.evaluator")
    monkeypatch.chdir(tmp_path)
    paths = _real_runs(tmp_path)
    root = tmp_path / "lb"
    code, out, err = run(
        [
            "submit",
            *map(str, paths),
            "-b",
            "imagenet-1k",
            "-m",
            "Noisy oracle",
            "--backbone",
            "none",
            "--root",
            str(root),
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    submit_err = err
    rec = json.loads(out)
    for i, p in enumerate(paths):
        code, out, err = run(["evaluate", str(p), "-b", "imagenet-1k", "--json"], capsys)
        assert code == 0, err
        ev = json.loads(out)
        assert rec["predictions_sha256"][i] == ev["predictions_sha256"] == sha256_file(p)
        for name in ("acc", "top5_1", "nmi", "ari"):
            assert rec["metrics"][name]["runs"][i] == ev[name]
    for name in ("acc", "top5_1", "nmi", "ari"):
        r = rec["metrics"][name]["runs"]
        assert rec["metrics"][name]["mean"] == pytest.approx(np.mean(r), abs=1e-15)
        assert rec["metrics"][name]["std"] == pytest.approx(np.std(r, ddof=1), abs=1e-15)
    assert 0.55 < rec["metrics"]["acc"]["runs"][1] < rec["metrics"]["acc"]["runs"][0] < 0.75
    assert rec["num_samples"] == 50000 and rec["num_clusters"] == 1000
    # re-evaluation in `leaderboard check` (prediction files present at the recorded paths)
    # plain .npy files carry no run record: backbone and preprocessing unknown, refused as verified
    assert "provenance incomplete (missing backbone, preprocessing)" in submit_err
    assert rec["provenance"]["manifest_version"] == rec["benchmark_version"] and rec["provenance"]["backbone"] is None
    assert rec["provenance"]["manifest_sha256"] == ev["provenance"]["manifest_sha256"]
    lb.build(root)
    (problem,) = lb.check_leaderboard(root)
    assert "noisy-oracle-none: expected complete provenance, found none for backbone, preprocessing" in problem
    d = json.loads((root / "submissions" / "imagenet-1k" / "noisy-oracle-none.json").read_text())
    d["metrics"]["nmi"] = lb.MetricStat.from_runs([x + 0.01 for x in d["metrics"]["nmi"]["runs"]]).model_dump()
    (root / "submissions" / "imagenet-1k" / "noisy-oracle-none.json").write_text(json.dumps(d))
    problems = lb.check_leaderboard(root, check_rendered=False)
    assert len(problems) == 3 and sum("metric nmi expected" in p for p in problems) == 2


# --------------------------------------------------------------------------------------------
# documentation site
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_docs_build_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    import os
    import subprocess
    import sys

    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-q",
            "-f",
            str(REPO / "mkdocs.yml"),
            "-d",
            str(tmp_path / "site"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for page in ("leaderboard", "reproduce", "api"):
        assert (tmp_path / "site" / page / "index.html").is_file()
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    assert 'id="in21k_bench.leaderboard.Submission"' in api and 'id="in21k_bench.evaluation.evaluator.evaluate"' in api


def test_submit_dry_run_writes_nothing(fake_eval, runs, tmp_path, capsys):
    root = tmp_path / "lb"
    code, out, err = run(["submit", str(runs[0]), "-b", "tiny", "-m", "M", "--root", str(root), "--dry-run"], capsys)
    assert code == 0 and "would write" in err and not root.exists()
    assert "ACC (top-1→1)" in out and "1 run(s)" in out


def test_seed_sources_name_the_table_of_every_number():
    """Each number is cited with its table; an entry combining two tables says which metric is from which."""
    rows = lb.read_reported()
    assert {r.source for r in rows} == {"Table 1", "Table 2", "Table 3", "Table 4", "Table 5 (appendix C.4)"}
    by_entry = {}
    for r in rows:
        by_entry.setdefault((r.benchmark, r.version, r.backbone, r.method), set()).add(r.source)
    for s in lb.paper_seed_submissions():
        tables = by_entry[(s.benchmark, s.benchmark_version, s.backbone, s.method)]
        for t in tables:
            assert t in s.source, (s.benchmark, s.method)
        if len(tables) > 1:  # in21k: Table 5 (acc) with Table 4 (multi-label)
            assert s.benchmark == "in21k"
            assert "Table 5 (appendix C.4) for acc; Table 4 for top1_L, top5_1, top5_L" in s.source
    # the multi-label table gives its own top-1 -> 1 for real1k only; the in21k one is Table 5's
    assert [r.source for r in rows if r.benchmark == "real1k" and r.metric == "acc"] == ["Table 4"] * 4


def test_reported_csv_is_validated():
    from in21k_bench.errors import In21kError

    with pytest.raises(In21kError, match="expected columns"):
        lb.read_reported("benchmark,value\ntiny,1\n")
    header = "benchmark,version,backbone,method,metric,value_pct,source\n"
    with pytest.raises(In21kError, match="expected a number in value_pct"):
        lb.read_reported(header + "tiny,v1,X,TEMI,acc,abc,Table 1\n")
    with pytest.raises(In21kError, match="expected a metric"):
        lb.read_reported(header + "tiny,v1,X,TEMI,f1,1.0,Table 1\n")
