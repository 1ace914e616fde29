"""The ``in21k-bench`` command line. One module per command group; see ``_apps.py``.

Every :class:`~in21k_bench.errors.In21kError` is printed as one line on stderr with exit code 2.
An ``OSError`` that escapes a command (disk full, permission denied, a file in the way) is printed the
same way: it is a problem with the machine or a path, not a bug to show a traceback for.
"""

from __future__ import annotations

import re
import sys

from ..errors import In21kError
from ..runtime.extras import missing_extra_error
from ._apps import app, features_app, fit_app, leaderboard_app  # noqa: F401

# Command modules register themselves on import, in this order (the order of `in21k-bench --help`).
# isort: off
from . import catalog_cmds  # noqa: F401
from . import evaluate_cmds  # noqa: F401
from . import features_cmds  # noqa: F401
from . import backbones_cmds  # noqa: F401
from . import methods_cmds  # noqa: F401
from . import zeroshot_cmds  # noqa: F401
from . import hub_cmds  # noqa: F401
from . import leaderboard_cmds  # noqa: F401
from . import demo_cmds  # noqa: F401
# isort: on


def _one_line(msg: str) -> str:
    """Messages quoting a library's multi-line text still print as one line. An error raised in a
    DataLoader worker arrives wrapped in the worker's traceback text: keep only its last line, the
    original message."""
    if "Original Traceback" in msg:
        last = [line for line in msg.splitlines() if line.strip()][-1].strip()
        msg = re.sub(r"^[A-Za-z_][\w.]*: ", "", last, count=1)
    return " ".join(msg.split())


def _command_name(argv: list[str]) -> str:
    """``fit temi`` from ``['fit', 'temi', '--features', ...]``; ``knn`` from ``['knn', ...]``."""
    words = [a for a in argv if not a.startswith("-")]
    if not words:
        return "in21k-bench"
    groups = {"features", "fit", "leaderboard"}
    return " ".join(words[:2]) if words[0] in groups and len(words) > 1 else words[0]


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        app(args=argv, standalone_mode=True)
    except In21kError as exc:
        print(f"error: {_one_line(str(exc))}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    except ModuleNotFoundError as exc:
        # a command reached an optional module without its require() check: the same one line
        err = missing_extra_error(exc, _command_name(sys.argv[1:] if argv is None else argv))
        if err is None:
            raise
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(err.exit_code) from None
    except OSError as exc:
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(
            "error: file system: expected the operation to succeed, found "
            f"{_one_line(exc.strerror or str(exc))}{where}",
            file=sys.stderr,
        )
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
