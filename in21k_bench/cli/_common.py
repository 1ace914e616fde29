"""Small pieces shared by the command modules."""

from __future__ import annotations

from ..runtime.device import DEVICE_HELP  # noqa: F401  (re-exported for the command modules)


def open_features_and_benchmark(features, benchmark: str | None):
    """``(train_store, val_store, Benchmark or None)`` for commands that take ``--features`` and an
    optional ``--benchmark``.

    With a benchmark, the stores are that benchmark's view of the features directory
    (:func:`in21k_bench.features.view.open_benchmark_features`): a directory extracted once for
    ``in21k`` (or ``imagenet-1k``) serves every benchmark on those images, rows selected by sample id
    and labelled with the benchmark's labels, without copying features."""
    from ..features.store import open_features

    if not benchmark:
        train, val = open_features(features)
        return train, val, None
    from ..benchmark import load
    from ..features.view import open_benchmark_features

    bench = load(benchmark)
    train, val = open_benchmark_features(features, bench)
    return train, val, bench
