"""``in21k-bench list | info | build-manifests | benchmark-docs``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from ._apps import app


def _print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


@app.command("list")
def list_cmd(
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
    version: Optional[str] = typer.Option(None, help="Only definitions of this version (default: latest of each)."),
) -> None:
    """List the registered benchmarks."""
    from ..manifests.index import ManifestIndex
    from ..registry.catalog import check_version, list_definitions

    if version is not None:
        check_version(version, "list")
    index = ManifestIndex.load()
    rows = []
    for d in list_definitions(version):
        entry = index.benchmark_entry(d.name, d.version) or {}
        rows.append(
            {
                "name": d.name,
                "version": d.version,
                "family": d.family,
                "status": d.status,
                "num_classes": entry.get("num_classes"),
                "num_train": entry.get("num_train"),
                "num_val": entry.get("num_val"),
            }
        )
    if json_out:
        _print_json(rows)
        return
    head = f"{'name':<16} {'version':<7} {'family':<12} {'status':<12} {'C':>7} {'train':>11} {'val':>8}"
    print(head)
    print("-" * len(head))
    for r in rows:
        fmt = lambda v: "-" if v is None else f"{v:,}"  # noqa: E731
        print(
            f"{r['name']:<16} {r['version']:<7} {r['family']:<12} {r['status']:<12} {fmt(r['num_classes']):>7} "
            f"{fmt(r['num_train']):>11} {fmt(r['num_val']):>8}"
        )


@app.command("info")
def info_cmd(
    name: str = typer.Argument(..., help="Benchmark name, e.g. imbalanced-2k."),
    version: Optional[str] = typer.Option(None, help="Manifest version (default: latest)."),
    inputs: Optional[Path] = typer.Option(None, "--input", help="Input file for a needs-input benchmark."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Describe one benchmark: rule, counts, status. Needs-input benchmarks say what is missing."""
    from ..benchmark import load
    from ..errors import NeedsInputError
    from ..registry.catalog import get_definition

    d = get_definition(name, version)
    if inputs is not None and d.status != "needs-input":
        from ..errors import InvalidInputError

        raise InvalidInputError(
            f"info: expected --input only for a needs-input benchmark, found {d.name} with status {d.status}"
        )
    try:
        info = load(name, version, inputs=inputs).info()
    except NeedsInputError as exc:
        info = dict(d.as_dict(), num_classes=None, num_train=None, num_val=None, missing=str(exc))
    if json_out:
        _print_json(info)
        return
    for k, v in info.items():
        print(f"{k:>22}: {v}")


@app.command("build-manifests")
def build_manifests_cmd(
    sources: Optional[Path] = typer.Option(
        None, help="Raw sources folder (default: $IN21K_SOURCES, else the vendored splits/sources/)."
    ),
    out: Optional[Path] = typer.Option(None, help="Splits folder to write (default: the package's splits/)."),
    version: Optional[str] = typer.Option(
        None, help="Version to build (default: the latest registered). A released version is never changed."
    ),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Rebuild the manifests deterministically from the raw sources (checks their sha256)."""
    from ..authoring.build import build_all
    from ..fileio import check_output_dir
    from ..registry.catalog import versions

    if out is not None:
        check_output_dir(out, "build-manifests --out")  # before the build, which takes a while
    version = version or versions()[-1]
    index = build_all(out_root=out, sources_dir=sources, version=version)
    benches = index.benchmarks(version)
    summary = {
        "version": version,
        "files": len(index.files(version)),
        "benchmarks": {k: e["status"] for k, e in benches.items()},
    }
    if json_out:
        _print_json(summary)
    else:
        print(f"built {summary['files']} files for {version} ({len(benches)} benchmarks)")


@app.command("benchmark-docs")
def benchmark_docs_cmd(
    out: Path = typer.Option(Path("docs"), help="Docs folder: writes benchmarks.md and figures/."),
    version: Optional[str] = typer.Option(None, help="Manifest version to document (default: latest)."),
) -> None:
    """Regenerate docs/benchmarks.md and the class-size histograms from the registry."""
    from ..authoring.catalog_docs import write_benchmark_docs

    path = write_benchmark_docs(out, version)
    print(f"wrote {path}")
