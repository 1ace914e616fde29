"""in21k-bench: reproducible large-scale image clustering benchmarks on ImageNet-21K.

Public API (mirrors the CLI)::

    in21k_bench.list_benchmarks()          # in21k-bench list
    in21k_bench.load("imbalanced-2k")      # in21k-bench info imbalanced-2k
    in21k_bench.evaluate("preds.npy", benchmark="real1k")   # in21k-bench evaluate
"""

from __future__ import annotations

from .benchmark import Benchmark, list_benchmarks, load
from .errors import In21kError
from .evaluate import evaluate  # the function; shadows the submodule name on purpose
from .version import __version__

__all__ = ["Benchmark", "In21kError", "evaluate", "list_benchmarks", "load", "__version__"]
