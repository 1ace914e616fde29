"""Extras: the one-line error for a missing optional dependency, the light import, --version, to_pandas."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import in21k_bench
from in21k_bench.cli import main
from in21k_bench.errors import In21kError, MissingExtraError
from in21k_bench.runtime.extras import require

HEAVY = ("torch", "faiss", "matplotlib", "sklearn", "timm", "open_clip", "PIL")


def test_require_names_the_extra_of_the_first_missing_module(monkeypatch):
    require("numpy", what="x")  # present: no error
    monkeypatch.setitem(sys.modules, "faiss", None)  # as if not installed
    with pytest.raises(MissingExtraError) as e:
        require("numpy", "faiss", what="fit temi")
    assert isinstance(e.value, In21kError)
    assert str(e.value) == "fit temi needs the 'methods' extra: pip install \"in21k-bench[methods]\""
    with pytest.raises(MissingExtraError, match="'extract' extra"):
        require("faiss", what="relabel", extra="extract")


@pytest.mark.parametrize(
    "argv, line",
    [
        (["fit", "temi", "--features", "f", "--out", "o"], "fit temi needs the 'methods' extra"),
        (["knn", "--features", "f"], "knn needs the 'methods' extra"),
        (["features", "digits", "--out", "o"], "features digits needs the 'methods' extra"),
    ],
)
def test_cli_missing_extra_is_one_line_exit_2(monkeypatch, capsys, tmp_path, argv, line):
    for m in ("torch", "faiss", "sklearn"):
        monkeypatch.setitem(sys.modules, m, None)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {line}: pip install") and "\n" not in err, err


def test_cli_maps_a_stray_module_not_found_of_an_optional_module(monkeypatch, capsys):
    """A code path that imports an optional module without a require() check still prints the one line."""
    import in21k_bench.cli.catalog_cmds as cc

    def boom(*a, **k):
        import open_clip  # noqa: F401

    monkeypatch.setitem(sys.modules, "open_clip", None)
    monkeypatch.setattr("in21k_bench.registry.catalog.list_definitions", boom)
    assert cc  # the command imports list_definitions at call time
    with pytest.raises(SystemExit) as e:
        main(["list"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: list needs the 'extract' extra: pip install \"in21k-bench[extract]\"", err


def test_version_option(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code in (0, None)
    assert capsys.readouterr().out.strip() == f"in21k-bench {in21k_bench.__version__}"


def test_import_and_cli_startup_load_no_heavy_module():
    code = f"import sys, in21k_bench, in21k_bench.cli\nprint([m for m in {HEAVY!r} if m in sys.modules])\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_import_is_lazy_and_evaluate_stays_the_function():
    """``import in21k_bench`` loads neither numpy nor pandas; the public names resolve on first use, and
    importing the ``evaluate`` submodule does not replace the ``evaluate`` function on the package."""
    code = (
        "import sys, in21k_bench as b\n"
        "print(sorted(m for m in ('numpy', 'pandas', 'scipy', 'pyarrow') if m in sys.modules))\n"
        "import in21k_bench.evaluation.evaluator\n"
        "from in21k_bench import evaluate, load, list_benchmarks, Benchmark\n"
        "print(callable(b.evaluate), b.evaluate is evaluate, evaluate.__module__, "
        "isinstance(load('tiny'), Benchmark))\n"
        "print('load' in dir(b), 'tiny' in list_benchmarks())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[:3] == ["[]", "True True in21k_bench.evaluation.evaluator True", "True True"], out
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        in21k_bench.nope  # noqa: B018


def test_to_pandas_class_level_and_sample_level():
    b = in21k_bench.load("tiny")
    df = b.to_pandas()
    assert list(df.columns) == ["sample_id", "label", "class_name"]
    assert len(df) == b.num_val and df["sample_id"].isna().all()
    np.testing.assert_array_equal(df["label"].to_numpy(), b.val_labels())
    names = dict(zip(b.classes["label"], b.classes["name"]))
    assert df["class_name"].tolist()[:5] == [names[x] for x in b.val_labels()[:5]]
    assert len(b.to_pandas("train")) == len(b.train_labels())

    r = in21k_bench.load("real1k")
    dr = r.to_pandas("val")
    assert len(dr) == r.num_val and dr["sample_id"].tolist() == list(r.val_sample_ids())
    assert dr["class_name"].notna().all()
    with pytest.raises(In21kError, match="expected split train or val"):
        b.to_pandas("test")


def test_to_pandas_from_a_local_copy(tmp_path):
    """Class-level benchmark + root: the sample ids of the scanned copy."""
    b = in21k_bench.load("tiny")
    wnid = b.source_classes["wnid"].iloc[0]
    (tmp_path / "val" / wnid).mkdir(parents=True)
    for i in range(3):
        (tmp_path / "val" / wnid / f"img{i}.JPEG").write_bytes(b"x")
    df = b.to_pandas("val", root=tmp_path)
    assert len(df) == 3 and all(s.startswith(f"val/{wnid}/") for s in df["sample_id"])
    label = int(b.source_classes["label"].iloc[0])
    assert (df["label"] == label).all()
    assert df["class_name"].iloc[0] == b.classes.set_index("label")["name"][label]
