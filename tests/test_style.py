"""Style: the whole tree is formatted by ``ruff format`` and clean under ``ruff check`` with the
configuration in pyproject.toml (``[tool.ruff]``). ruff comes with the ``test`` extra, so this never
skips; CI runs the same two commands."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", *args], cwd=REPO, capture_output=True, text=True, timeout=300)


def test_ruff_check_is_clean():
    p = _ruff("check", "--no-cache", "--output-format", "concise", ".")
    assert p.returncode == 0, f"ruff check found problems (fix them or run `ruff check --fix .`):\n{p.stdout}{p.stderr}"


def test_ruff_format_is_applied():
    p = _ruff("format", "--no-cache", "--check", ".")
    assert p.returncode == 0, f"files not formatted (run `ruff format .`):\n{p.stdout}{p.stderr}"


def test_ruff_is_configured_and_in_the_test_extra():
    text = (REPO / "pyproject.toml").read_text()
    assert re.search(r"^\[tool\.ruff\]\nline-length = 120$", text, re.M), (
        "pyproject.toml: [tool.ruff] line-length = 120"
    )
    assert re.search(r'^test = \[.*"ruff', text, re.M), "pyproject.toml: ruff belongs to the test extra"
