"""in21k-bench: reproducible large-scale image clustering benchmarks on ImageNet-21K."""

from __future__ import annotations

__version__ = "0.1.0"
