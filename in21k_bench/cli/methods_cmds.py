"""CLI commands for methods (filled in by its owner)."""

from ._apps import app  # noqa: F401
