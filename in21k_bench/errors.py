"""Error types. Every error a user can cause is an :class:`In21kError` subclass.

The CLI turns these into a single line on stderr and exit code 2 (no traceback).
Messages follow one shape: what was being done, what was expected, what was found.
"""

from __future__ import annotations


class In21kError(Exception):
    """Base class for user-facing errors (bad input, missing data, failed checks)."""

    exit_code = 2


class UnknownBenchmarkError(In21kError, KeyError):
    """A benchmark name or version that the registry does not know."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class ChecksumError(In21kError):
    """A file's sha256 does not match the one recorded in an index."""


class NeedsInputError(In21kError):
    """A registered benchmark whose manifest needs an input that is not present."""


class InvalidInputError(In21kError, ValueError):
    """A user-supplied file or array does not have the expected form."""


class SourcesError(In21kError):
    """The raw source files (vendored in ``splits/sources/``, or ``--sources``) are missing or altered."""


class HubError(In21kError):
    """The hub could not serve what was asked (unknown repo / revision / file, HTTP error)."""


class HubOfflineError(In21kError):
    """A file is needed, it is not in the hub cache, and the hub cannot be reached (or offline mode is on)."""


class ReleasedVersionError(In21kError):
    """``publish`` was asked to overwrite a version that is already tagged on the hub."""


class InvalidSubmissionError(In21kError, ValueError):
    """A leaderboard submission file or a submit request that does not satisfy the schema or the rules."""


class LeaderboardCheckError(In21kError):
    """``leaderboard check`` found problems (each one is printed on its own line)."""


class ResumeError(In21kError):
    """A checkpoint exists but was written by a run with a different configuration or data
    (raised by :func:`in21k_bench.methods.head_training.fit`; also importable from that module)."""


class ClipError(In21kError):
    """A CLIP model could not be loaded or used as asked (raised by :mod:`in21k_bench.zeroshot.clip`;
    also importable from that module)."""


class MissingExtraError(In21kError):
    """A command or function needs an optional dependency group (``pip install "in21k-bench[EXTRA]"``) that is
    not installed (raised by :func:`in21k_bench.runtime.extras.require`)."""
