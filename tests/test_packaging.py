"""Packaging: the top-level splits/ folder installs as package data.

A wheel built from the repository must carry every indexed manifest, the index and the vendored
sources, and ``load()`` must work from that wheel installed in a fresh virtual environment (which
sees the already-installed dependencies through a ``.pth`` file; nothing is downloaded).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

from setuptools import find_packages

from in21k_bench.authoring.sources import recorded_checksums, stored_path
from in21k_bench.manifests.files import read_index
from in21k_bench.paths import SPLITS_DIR

REPO = Path(__file__).resolve().parents[1]
IGNORE = (".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "site", "runs", ".pytest_cache", "tmp")


def _pyproject_packages() -> list[str]:
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    block = re.search(r"^packages = \[(.*?)\]", text, re.S | re.M)
    assert block, "pyproject.toml: expected an explicit [tool.setuptools] packages list"
    return re.findall(r'"([^"]+)"', block.group(1))


def test_package_list_names_every_package_folder():
    """pyproject lists the packages explicitly (so that in21k_bench.splits can map to splits/):
    a new subpackage must be added there, or a wheel would silently lack it."""
    found = set(find_packages(str(REPO), include=["in21k_bench", "in21k_bench.*"]))
    listed = set(_pyproject_packages())
    assert listed == found | {"in21k_bench.splits"}, (
        f"add {sorted(found - listed)} to [tool.setuptools] packages in pyproject.toml"
        if found - listed
        else sorted(listed - found)
    )


def test_checkout_uses_the_top_level_splits_folder():
    if (REPO / ".git").exists() or (REPO / "pyproject.toml").is_file():
        assert SPLITS_DIR.resolve() == (REPO / "splits").resolve()
    assert not (REPO / "in21k_bench" / "splits").exists()


def _copy_source_tree(dest: Path) -> Path:
    """The project's files without virtual environments, build output or VCS data."""
    shutil.copytree(REPO, dest, ignore=shutil.ignore_patterns(*IGNORE))
    return dest


def _expected_wheel_files() -> set[str]:
    names = {"in21k_bench/splits/index.json"}
    # every module and data file of the package folder (a subpackage missing from pyproject's list would be absent)
    for p in (REPO / "in21k_bench").rglob("*"):
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc":
            names.add(p.relative_to(REPO).as_posix())
    for v in read_index()["versions"].values():
        names |= {f"in21k_bench/splits/{rel}" for rel in v["files"]}
    src = SPLITS_DIR / "sources"
    names |= {f"in21k_bench/splits/sources/{n}" for n in ("SOURCES.md", "WORDNET-LICENSE.txt", "README.md")}
    for rel in recorded_checksums(src):
        names.add("in21k_bench/splits/" + stored_path(src, rel).relative_to(SPLITS_DIR).as_posix())
    return names


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "IN21K_SOURCES")}
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    return env


def _fresh_venv(path: Path) -> tuple[Path, Path]:
    """A venv without pip that sees the already-installed dependencies (torch, pandas, ...) through
    a .pth file (a .pth inside that folder, e.g. another editable install, is not processed).
    Returns (python, site-packages)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, env=_env())
    py = path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = Path(
        subprocess.run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
            env=_env(),
        ).stdout.strip()
    )
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (purelib / "zz_deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    return py, purelib


def _pip_install(py: Path, *args: str, cwd: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", *args],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=cwd,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]


PROBE = (
    "import json, in21k_bench\n"
    "from in21k_bench.paths import SPLITS_DIR\n"
    "from in21k_bench.authoring.sources import Sources\n"
    "b = in21k_bench.load('tiny')\n"
    "s = Sources.locate()\n"
    "print(json.dumps({'file': in21k_bench.__file__, 'splits': str(SPLITS_DIR), 'sources': str(s.root),\n"
    "  'classes': b.num_classes, 'val': int(len(b.val_labels())), 'wnids': len(s.winter21_wnids)}))\n"
)


def _probe(py: Path, cwd: Path) -> dict:
    """Import the package in ``py`` (not from this checkout), load a benchmark, locate the sources."""
    run = subprocess.run([str(py), "-c", PROBE], capture_output=True, text=True, env=_env(), cwd=cwd)
    assert run.returncode == 0, run.stderr[-3000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    import in21k_bench

    here = in21k_bench.load("tiny")
    assert (got["classes"], got["val"], got["wnids"]) == (here.num_classes, here.num_val, 10450)
    return got


def _build_wheel(tmp_path: Path) -> tuple[Path, str]:
    """Build the wheel with the backend itself, as `pip wheel --no-build-isolation` calls it (offline), so
    that its warnings are visible: returns the wheel and the build's output."""
    src = _copy_source_tree(tmp_path / "src")
    dist = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-c", f"import setuptools.build_meta as b; print(b.build_wheel({str(dist)!r}))"],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=src,
    )
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    (wheel,) = dist.glob("in21k_bench-*.whl")
    return wheel, build.stdout + build.stderr


def test_wheel_carries_splits_and_loads_in_a_fresh_venv(tmp_path):
    wheel, output = _build_wheel(tmp_path)
    assert "Deprecat" not in output, output[-2000:]
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    missing = _expected_wheel_files() - names
    assert not missing, f"wheel lacks {len(missing)} files, e.g. {sorted(missing)[:3]}"
    assert not any(n.startswith("splits/") for n in names)  # installed under the package only
    assert "License-Expression: Apache-2.0" in meta
    assert any(n.endswith(".dist-info/licenses/splits/sources/WORDNET-LICENSE.txt") for n in names)

    py, site = _fresh_venv(tmp_path / "venv")
    _pip_install(py, str(wheel), cwd=tmp_path)
    got = _probe(py, tmp_path)
    assert got["file"].startswith(str(site))
    assert got["splits"] == str(site / "in21k_bench" / "splits")
    assert got["sources"] == str(site / "in21k_bench" / "splits" / "sources")
    cli = subprocess.run(
        [str(py.parent / "in21k-bench"), "info", "tiny", "--json"],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=tmp_path,
    )
    assert cli.returncode == 0 and json.loads(cli.stdout)["num_classes"] == got["classes"], cli.stderr[-2000:]


def test_editable_install_reads_the_top_level_splits(tmp_path):
    src = _copy_source_tree(tmp_path / "src")
    py, site = _fresh_venv(tmp_path / "venv")
    _pip_install(py, "--no-build-isolation", "-e", str(src), cwd=tmp_path)
    got = _probe(py, tmp_path)
    assert got["file"] == str(src / "in21k_bench" / "__init__.py")
    assert got["splits"] == str(src / "splits")
    assert got["sources"] == str(src / "splits" / "sources")


CORE_PROBE = (
    "import json, sys, time\n"
    "t = time.perf_counter(); import in21k_bench; dt = time.perf_counter() - t\n"
    "heavy = [m for m in ('torch', 'faiss', 'matplotlib', 'sklearn', 'timm', 'open_clip', 'PIL') if m in sys.modules]\n"
    "import importlib.util as u\n"
    "print(json.dumps({'import_s': dt, 'heavy': heavy, 'torch': u.find_spec('torch') is not None,\n"
    "  'num_val': in21k_bench.load('tiny').num_val}))\n"
)


def test_core_wheel_without_extras_loads_and_evaluates_and_names_missing_extras(tmp_path):
    """The wheel installed WITHOUT extras into a venv of its own (no torch, no faiss, no matplotlib: the core
    dependencies resolve from pip's configured index) loads and evaluates; a command that needs an extra
    fails with one line naming it, exit 2."""
    wheel, _ = _build_wheel(tmp_path)
    venv = tmp_path / "core"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "IN21K_SOURCES", "VIRTUAL_ENV")}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env)
    py = venv / "bin" / "python"
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel)], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    run = subprocess.run([str(py), "-c", CORE_PROBE], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert not got["torch"], "the core install must not pull torch"
    assert got["heavy"] == [] and got["num_val"] == 53000, got
    cli = str(venv / "bin" / "in21k-bench")

    def run_cli(*args):
        return subprocess.run([cli, *args], capture_output=True, text=True, env=env, cwd=tmp_path)

    import numpy as np

    preds = np.random.default_rng(0).integers(0, 1060, size=53000).astype(np.int64)
    np.save(tmp_path / "preds.npy", preds)
    ev = run_cli("evaluate", "preds.npy", "--benchmark", "tiny", "--json")
    assert ev.returncode == 0, ev.stderr[-2000:]
    assert 0.0 <= json.loads(ev.stdout)["acc"] <= 1.0, ev.stdout[:500]
    assert run_cli("--version").stdout.strip() == "in21k-bench 0.1.0"
    for args, what, extra in (
        (["fit", "temi", "--features", "f", "--out", "o"], "fit temi", "methods"),
        (["knn", "--features", "f"], "knn", "methods"),
        (["evaluate", "preds.npy", "--benchmark", "tiny", "--plots", "p"], "evaluate --plots", "plots"),
        (
            ["features", "extract", "--images", "i", "--out", "o", "--backbone", "timm:resnet18"],
            "features extract",
            "extract",
        ),
    ):
        res = run_cli(*args)
        line = f'error: {what} needs the {extra!r} extra: pip install "in21k-bench[{extra}]"'
        assert res.returncode == 2 and res.stderr.strip() == line, (args, res.returncode, res.stderr[-1500:])


def test_release_files_name_this_version():
    """CITATION.cff (valid YAML, the package and the papers) and the CHANGELOG's first entry carry the
    package version, so a release cannot ship with stale citation metadata."""
    import yaml

    from in21k_bench.version import __version__

    cff = yaml.safe_load((REPO / "CITATION.cff").read_text(encoding="utf-8"))
    assert cff["version"] == __version__ and cff["cff-version"].startswith("1.2")
    assert "Scaling Up Deep Clustering" in cff["preferred-citation"]["title"]
    assert all(ref.get("title") and ref.get("authors") for ref in cff["references"])
    first = next(x for x in (REPO / "CHANGELOG.md").read_text(encoding="utf-8").splitlines() if x.startswith("## "))
    assert first.startswith(f"## {__version__}"), first
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(rf'^version\s*=\s*"{re.escape(__version__)}"', pyproject, re.M)
