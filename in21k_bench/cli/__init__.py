"""The ``in21k-bench`` command line. One module per command group; see ``_apps.py``.

Every :class:`~in21k_bench.errors.In21kError` is printed as one line on stderr with exit code 2.
"""

from __future__ import annotations

import sys

from ..errors import In21kError
from ._apps import app, features_app, fit_app, leaderboard_app  # noqa: F401

# Command modules register themselves on import.
from . import catalog_cmds  # noqa: F401,E402
from . import evaluate_cmds  # noqa: F401,E402
from . import features_cmds  # noqa: F401,E402
from . import methods_cmds  # noqa: F401,E402
from . import zeroshot_cmds  # noqa: F401,E402
from . import hub_cmds  # noqa: F401,E402
from . import leaderboard_cmds  # noqa: F401,E402
from . import demo_cmds  # noqa: F401,E402


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        app(args=argv, standalone_mode=True)
    except In21kError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
