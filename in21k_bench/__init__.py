"""in21k-bench: reproducible large-scale image clustering benchmarks on ImageNet-21K.

Public API (mirrors the CLI)::

    in21k_bench.list_benchmarks()          # in21k-bench list
    in21k_bench.load("imbalanced-2k")      # in21k-bench info imbalanced-2k
    in21k_bench.evaluate("preds.npy", benchmark="real1k")   # in21k-bench evaluate
    in21k_bench.list_backbones()           # in21k-bench backbones

``import in21k_bench`` is cheap: the names above are loaded on first use (pandas and the registry
only when a benchmark is touched), so a CLI start or a script that only needs the version pays
nothing for the rest.
"""

from __future__ import annotations

import importlib
import sys
import types

from .errors import In21kError
from .version import __version__

#: Public name -> the module that defines it (imported on first access).
_LAZY = {
    "Benchmark": "benchmark",
    "list_benchmarks": "benchmark",
    "load": "benchmark",
    "evaluate": "evaluation.evaluator",
    "list_backbones": "features.backbones",
}

__all__ = ["Benchmark", "In21kError", "evaluate", "list_backbones", "list_benchmarks", "load", "__version__"]


def _attr(name: str):
    return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)


class _Package(types.ModuleType):
    """The package module: public names resolve lazily, on first access."""

    def __getattr__(self, name: str):
        if name in _LAZY:
            value = _attr(name)
            setattr(self, name, value)  # later lookups skip __getattr__
            return value
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(_LAZY))


sys.modules[__name__].__class__ = _Package
