"""Bad input on the command line: one-line error, non-zero exit, no traceback, nothing half-written.

Every case runs ``in21k_bench.cli.main`` in process with realistic mistakes (missing paths, a file where
a folder is needed, corrupt or truncated stores and tables, out-of-range numbers, unknown names and
versions, checkpoints that are not plain weights). A case passes when the exit code is non-zero,
stderr has no traceback, our own errors are exactly one ``error:`` line (the last line; commands that
log progress by design may log before it), click's usage errors show their usage block, and no output
file is left where the case says none may be.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from in21k_bench.errors import In21kError, InvalidInputError

# --------------------------------------------------------------------------------------------------
# fixtures: one folder of broken inputs shared by every case
# --------------------------------------------------------------------------------------------------


class _Boom:
    """Unpickling this would create a file: a checkpoint must never be unpickled."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _edit_meta(store: Path, **changes) -> None:
    meta = json.loads((store / "meta.json").read_text())
    meta.update(changes)
    (store / "meta.json").write_text(json.dumps(meta))


@pytest.fixture(scope="module")
def fx(tmp_path_factory) -> Path:
    from PIL import Image

    from in21k_bench.features.digits import write_digits
    from in21k_bench.registry.taxonomy import load_taxonomy

    F = tmp_path_factory.mktemp("fx")
    (F / "file.txt").write_text("not a folder\n")
    (F / "emptydir").mkdir()
    (F / "garbage.bin").write_bytes(bytes(range(256)) * 4)
    write_digits(F / "dig")

    def broken(name: str) -> Path:
        shutil.copytree(F / "dig", F / name)
        return F / name / "train"

    (broken("nonutf8meta") / "meta.json").write_bytes(b"\xff\xfe{\x80}")
    (broken("badindex") / "index.parquet").write_bytes(b"garbage")
    sh = broken("truncshard") / "shard-00000.npy"
    sh.write_bytes(sh.read_bytes()[:600])
    _edit_meta(broken("strdim"), dim="abc")
    _edit_meta(broken("shardsnull"), shards=None)
    _edit_meta(broken("shardnorows"), shards=[{"file": "shard-00000.npy"}])
    st = broken("shardpath")
    _edit_meta(st, shards=[{"file": "../../val/shard-00000.npy", "rows": 1442, "sha256": "0"}])
    (broken("nometa") / "meta.json").unlink()
    np.save(F / "intshard.npy", np.zeros((1442, 64), np.int16))
    shutil.copy(F / "intshard.npy", broken("intshard") / "shard-00000.npy")

    np.save(F / "hugeid.npy", np.full(53_000, 2**40, dtype=np.int64))
    np.save(F / "tiny_top1.npy", np.arange(53_000) % 1060)
    pd.DataFrame({"x": [1, 2]}).to_parquet(F / "noid.parquet")

    lb = F / "lb_nonutf8" / "submissions" / "tiny"
    lb.mkdir(parents=True)
    (lb / "x.json").write_bytes(b"\xff\xfe\x00")

    tax = load_taxonomy()
    rng = np.random.default_rng(0)
    for root, bad in (("img", False), ("img_bad", True)):
        d = F / root / "val" / tax.wnids[1731]
        d.mkdir(parents=True)
        for k in range(2):
            p = d / f"{tax.wnids[1731]}_{k}.JPEG"
            if bad and k == 1:
                p.write_bytes(b"not a jpeg")
            else:
                Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(p)
    with open(F / "evil.pt", "wb") as f:
        pickle.dump({"state_dict": _Boom(str(F / "PWNED"))}, f, protocol=2)
    return F


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    from in21k_bench.cli import main

    try:
        main(argv)
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    out = capsys.readouterr()
    return code, out.out, out.err


# --------------------------------------------------------------------------------------------------
# the cases: (id, argv with {F} and {T} placeholders, expected message fragment, kind, paths that must not exist)
#   kind "strict": stderr is exactly one line, "error: ..."
#   kind "logged": the command may log progress lines before its single final "error:" line
#   kind "usage":  click / typer usage error (exit 2, usage block)
# --------------------------------------------------------------------------------------------------

EXTRACT = ["features", "extract", "--images", "{F}/img", "--split", "val", "--workers", "0", "--device", "cpu"]

CASES = [
    # evaluate
    (
        "evaluate-huge-ids",
        ["evaluate", "{F}/hugeid.npy", "-b", "tiny"],
        "expected cluster ids < 16,777,216",
        "strict",
        [],
    ),
    (
        "evaluate-huge-k",
        ["evaluate", "{F}/tiny_top1.npy", "-b", "tiny", "-k", "100000000000"],
        "expected K (--num-clusters) <=",
        "strict",
        [],
    ),
    # features info on broken stores
    ("info-nonutf8-meta", ["features", "info", "{F}/nonutf8meta"], "expected UTF-8 JSON text", "strict", []),
    ("info-corrupt-index", ["features", "info", "{F}/badindex"], "expected a readable index.parquet", "strict", []),
    (
        "info-truncated-shard",
        ["features", "info", "{F}/truncshard"],
        "found an unreadable or truncated file",
        "strict",
        [],
    ),
    ("info-dim-not-int", ["features", "info", "{F}/strdim"], "expected 'dim' a positive integer", "strict", []),
    ("info-shards-null", ["features", "info", "{F}/shardsnull"], "expected 'shards' a list", "strict", []),
    ("info-shard-no-rows", ["features", "info", "{F}/shardnorows"], "expected shard 0", "strict", []),
    ("info-shard-path-escape", ["features", "info", "{F}/shardpath"], "name in the store folder", "strict", []),
    ("info-train-without-meta", ["features", "info", "{F}/nometa"], "expected meta.json", "strict", []),
    ("info-int-shard", ["features", "info", "{F}/intshard"], "of floats, found dtype int16", "strict", []),
    # features digits / simulate: outputs that cannot be written, non-finite numbers
    ("digits-out-is-file", ["features", "digits", "--out", "{F}/file.txt"], "found a regular file", "strict", []),
    (
        "digits-out-under-file",
        ["features", "digits", "--out", "{F}/file.txt/sub"],
        "found a regular file",
        "strict",
        [],
    ),
    (
        "simulate-scale-nan",
        ["features", "simulate", "--benchmark", "tiny", "--out", "{T}/sim", "--scale", "nan"],
        "expected finite scale > 0",
        "strict",
        ["{T}/sim"],
    ),
    (
        "simulate-scale-inf",
        ["features", "simulate", "--benchmark", "tiny", "--out", "{T}/sim", "--scale", "inf"],
        "expected finite scale > 0",
        "strict",
        ["{T}/sim"],
    ),
    (
        "simulate-seed-negative",
        ["features", "simulate", "--benchmark", "tiny", "--out", "{T}/sim", "--seed", "-1"],
        "--seed",
        "usage",
        ["{T}/sim"],
    ),
    (
        "simulate-out-is-file",
        ["features", "simulate", "--benchmark", "tiny", "--out", "{F}/file.txt"],
        "found a regular file",
        "strict",
        [],
    ),
    # knn: bad block sizes and outputs fail before any partial file exists
    (
        "knn-db-rows-zero",
        ["knn", "--features", "{F}/dig", "--k", "5", "--db-rows", "0", "--out", "{T}/k.npy"],
        "expected db_rows >= 1",
        "strict",
        ["{T}/k.npy.partial.npy", "{T}/k.npy.progress.json"],
    ),
    (
        "knn-db-rows-negative",
        ["knn", "--features", "{F}/dig", "--k", "5", "--db-rows", "-4", "--out", "{T}/k.npy"],
        "expected db_rows >= 1",
        "strict",
        ["{T}/k.npy.partial.npy", "{T}/k.npy.progress.json"],
    ),
    (
        "knn-out-under-file",
        ["knn", "--features", "{F}/dig", "--k", "5", "--out", "{F}/file.txt/k.npy"],
        "found a regular file",
        "strict",
        [],
    ),
    (
        "knn-out-is-folder",
        ["knn", "--features", "{F}/dig", "--k", "5", "--out", "{F}/emptydir"],
        "ending in .npy",
        "strict",
        [],
    ),
    (
        "knn-truncated-store",
        ["knn", "--features", "{F}/truncshard", "--k", "5", "--out", "{T}/k.npy"],
        "truncated",
        "strict",
        ["{T}/k.npy.partial.npy"],
    ),
    # fit kmeans: checks before the (long) fit, not after it
    (
        "kmeans-out-is-file",
        ["fit", "kmeans", "--features", "{F}/dig", "--out", "{F}/file.txt", "--device", "cpu"],
        "found a regular file",
        "strict",
        [],
    ),
    (
        "kmeans-out-under-file",
        ["fit", "kmeans", "--features", "{F}/dig", "--out", "{F}/file.txt/sub", "--device", "cpu"],
        "found a regular file",
        "strict",
        [],
    ),
    (
        "kmeans-k-above-rows",
        ["fit", "kmeans", "--features", "{F}/dig", "--out", "{T}/km", "-k", "100000", "--device", "cpu"],
        "expected at least K=100000 training rows",
        "strict",
        ["{T}/km"],
    ),
    (
        "kmeans-sample-below-k",
        ["fit", "kmeans", "--features", "{F}/dig", "--out", "{T}/km", "--train-size", "5", "--device", "cpu"],
        "raise --train-size",
        "strict",
        ["{T}/km"],
    ),
    (
        "kmeans-seed-negative",
        ["fit", "kmeans", "--features", "{F}/dig", "--out", "{T}/km", "--seed", "-1", "--train-size", "100"],
        "--seed",
        "usage",
        ["{T}/km"],
    ),
    # catalog commands
    (
        "list-unknown-version",
        ["list", "--version", "v9"],
        "expected a registered version (v1, v2), found 'v9'",
        "strict",
        [],
    ),
    (
        "info-input-missing",
        ["info", "p-hzr", "--input", "{F}/nothere.parquet"],
        "expected the relabels input file",
        "strict",
        [],
    ),
    ("info-input-folder", ["info", "p-hzr", "--input", "{F}/emptydir"], "found a folder", "strict", []),
    (
        "info-input-wrong-columns",
        ["info", "p-hzr", "--input", "{F}/noid.parquet"],
        "(missing sample_id, original_wnid, refined_wnid)",
        "strict",
        [],
    ),
    (
        "info-input-on-ready",
        ["info", "tiny", "--input", "{F}/file.txt"],
        "expected --input only for a needs-input benchmark",
        "strict",
        [],
    ),
    (
        "build-unknown-version",
        ["build-manifests", "--version", "v9", "--out", "{T}/splits"],
        "expected a registered version",
        "strict",
        ["{T}/splits"],
    ),
    (
        "build-version-path",
        ["build-manifests", "--version", "../escape", "--out", "{T}/splits"],
        "expected a registered version",
        "strict",
        ["{T}/splits", "{T}/escape"],
    ),
    ("build-out-is-file", ["build-manifests", "--out", "{F}/file.txt"], "found a regular file", "strict", []),
    ("docs-out-is-file", ["benchmark-docs", "--out", "{F}/file.txt"], "found a regular file", "strict", []),
    # leaderboard
    (
        "lb-build-missing-root",
        ["leaderboard", "build", "--root", "{T}/lb"],
        "expected a submissions/ folder",
        "strict",
        ["{T}/lb"],
    ),
    (
        "lb-build-root-is-file",
        ["leaderboard", "build", "--root", "{F}/file.txt"],
        "expected a submissions/ folder",
        "strict",
        [],
    ),
    (
        "lb-build-nonutf8",
        ["leaderboard", "build", "--root", "{F}/lb_nonutf8"],
        "expected UTF-8 JSON text",
        "strict",
        ["{F}/lb_nonutf8/README.md"],
    ),
    (
        "lb-check-nonutf8",
        ["leaderboard", "check", "--root", "{F}/lb_nonutf8"],
        "expected UTF-8 JSON text",
        "strict",
        [],
    ),
    (
        "submit-root-is-file",
        ["submit", "{F}/tiny_top1.npy", "-b", "tiny", "-m", "X", "--root", "{F}/file.txt"],
        "found a regular file",
        "strict",
        [],
    ),
    # features extract: model and checkpoint problems are one line; a pickle is never run
    (
        "extract-image-size-zero",
        EXTRACT + ["--out", "{T}/ex", "--backbone", "timm:resnet18", "--random-init", "--image-size", "0"],
        "--image-size",
        "usage",
        ["{T}/ex"],
    ),
    (
        "extract-unknown-timm-model",
        EXTRACT + ["--out", "{T}/ex", "--backbone", "timm:no_such_model_xyz", "--random-init"],
        "expected a timm model name, found 'no_such_model_xyz'",
        "strict",
        ["{T}/ex"],
    ),
    (
        "extract-garbage-checkpoint",
        EXTRACT + ["--out", "{T}/ex", "--backbone", "timm:resnet18", "--checkpoint", "{F}/garbage.bin"],
        "backbone: expected",
        "strict",
        ["{T}/ex"],
    ),
    (
        "extract-pickle-checkpoint",
        EXTRACT + ["--out", "{T}/ex", "--backbone", "timm:resnet18", "--checkpoint", "{F}/evil.pt"],
        "backbone: expected",
        "strict",
        ["{T}/ex", "{F}/PWNED"],
    ),
    (
        "extract-out-is-file",
        EXTRACT + ["--out", "{F}/file.txt", "--backbone", "timm:resnet18", "--random-init"],
        "found a regular file",
        "strict",
        [],
    ),
    (
        "extract-bad-image-in-worker",
        [
            "features",
            "extract",
            "--images",
            "{F}/img_bad",
            "--split",
            "val",
            "--workers",
            "1",
            "--device",
            "cpu",
            "--out",
            "{T}/ex",
            "--backbone",
            "timm:resnet18",
            "--random-init",
        ],
        "expected a readable image",
        "logged",
        [],
    ),
]


@pytest.mark.parametrize("argv,fragment,kind,absent", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gives_one_line_error(argv, fragment, kind, absent, fx, tmp_path, capsys):
    sub = lambda s: s.replace("{F}", str(fx)).replace("{T}", str(tmp_path))  # noqa: E731
    code, _out, err = _run([sub(a) for a in argv], capsys)
    assert code != 0, f"exit 0 on bad input; stderr: {err!r}"
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    if kind == "usage":
        assert code == 2 and "Usage:" in err and fragment in err, err
    else:
        assert code == 2, err
        errors = [line for line in lines if line.startswith("error:")]
        assert len(errors) == 1 and lines[-1] == errors[0], err
        assert fragment in errors[0], err
        if kind == "strict":
            assert len(lines) == 1, err
    for p in absent:
        assert not Path(sub(p)).exists(), f"{sub(p)} left behind"


# --------------------------------------------------------------------------------------------------
# the same checks at the API boundary, and the CLI's last-resort formatting
# --------------------------------------------------------------------------------------------------


def test_api_rejects_bad_numbers(fx, tmp_path):
    from in21k_bench.features.simulate import simulate_features
    from in21k_bench.methods.kmeans import SphericalKMeans
    from in21k_bench.methods.knn import exact_knn

    x = np.eye(8, dtype=np.float32)
    for kw in ({"db_rows": 0}, {"db_rows": -3}, {"chunk_rows": 0}):
        with pytest.raises(InvalidInputError):
            exact_knn(x, 2, **kw)
    with pytest.raises(InvalidInputError, match="seed >= 0"):
        SphericalKMeans(4, seed=-1, device="cpu")
    for kw in ({"scale": float("nan")}, {"val_scale": float("inf")}, {"dim": 0}, {"seed": -2}):
        with pytest.raises(InvalidInputError):
            simulate_features("tiny", tmp_path / "sim", **kw)
    assert not (tmp_path / "sim").exists()


def test_api_inputs_and_versions(fx):
    from in21k_bench import load
    from in21k_bench.errors import UnknownBenchmarkError
    from in21k_bench.registry.catalog import check_version, versions

    assert "v1" in versions() and check_version("v1") == "v1"
    with pytest.raises(UnknownBenchmarkError):
        check_version("../v1")
    with pytest.raises(InvalidInputError, match="found none"):
        load("p-hzr", inputs=fx / "nothere.parquet")
    with pytest.raises(InvalidInputError, match="expected inputs named"):
        load("p-hzr", inputs={"relabel": fx / "noid.parquet"})


def test_fileio_output_checks(fx, tmp_path):
    from in21k_bench.fileio import check_output_dir, ensure_dir, write_text

    with pytest.raises(InvalidInputError, match="found a regular file"):
        check_output_dir(fx / "file.txt" / "a" / "b")
    with pytest.raises(InvalidInputError, match="found a regular file"):
        ensure_dir(fx / "file.txt" / "a")
    with pytest.raises(InvalidInputError, match="found a folder"):
        write_text(fx / "emptydir", "x")
    assert check_output_dir(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()  # checking creates nothing
    assert list((fx / "emptydir").iterdir()) == []  # no temp file left behind


@pytest.mark.parametrize(
    "msg,want",
    [
        ("a\nb  c", "a b c"),
        (
            "Caught InvalidInputError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
            '  File "x.py", line 1, in f\n    g()\nin21k_bench.errors.InvalidInputError: image folder: expected a '
            "readable image at /a.jpg, found X\n",
            "image folder: expected a readable image at /a.jpg, found X",
        ),
    ],
)
def test_cli_error_text_is_one_line(msg, want):
    from in21k_bench.cli import _one_line

    assert _one_line(msg) == want


def test_oserror_is_one_line(monkeypatch, capsys):
    import in21k_bench.cli.catalog_cmds as cc

    def full_disk(*a, **k):
        raise OSError(28, "No space left on device", "/some/file")

    monkeypatch.setattr("in21k_bench.authoring.catalog_docs.write_benchmark_docs", full_disk)
    assert cc is not None
    code, _, err = _run(["benchmark-docs", "--out", "/tmp/unused-docs"], capsys)
    assert code == 2 and err.count("\n") == 1 and "No space left on device" in err and "/some/file" in err


def test_errors_are_in21k_errors():
    assert issubclass(InvalidInputError, In21kError)
