"""``in21k-bench backbones``: the backbone registry (torch-free)."""

from __future__ import annotations

import json
import sys

import typer

from ._apps import app


@app.command("backbones")
def backbones_cmd(json_out: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """The paper's backbones: loader, exact weights, feature dim and preprocessing (docs/features.md)."""
    from ..features.backbones import list_backbones, table_rows

    if json_out:
        sys.stdout.write(json.dumps(list_backbones(), indent=2) + "\n")
        return
    head = ["name", "loader", "spec", "dim", "preprocessing (paper)", "paper label"]
    rows = table_rows()
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
