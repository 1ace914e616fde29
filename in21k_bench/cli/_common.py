"""Small pieces shared by the command modules."""

from __future__ import annotations

DEVICE_HELP = "auto (GPU when available), cpu or cuda."


def open_features_and_benchmark(features, benchmark: str | None):
    """``(train_store, val_store, Benchmark or None)`` for commands that take ``--features`` and an
    optional ``--benchmark``."""
    from ..features.store import open_features

    train, val = open_features(features)
    bench = None
    if benchmark:
        from ..benchmark import load

        bench = load(benchmark)
    return train, val, bench
