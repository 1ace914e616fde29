"""Class subsets of ImageNet-21K-P that keep the original labels: the full set, the
frequency family (tiny..huge), the imbalance pair (imbalanced-2k, centered-2k), the leaf sets
and random-1k.

Frequency rule (made explicit, see ``docs/benchmarks.md``): the per-class train counts are the
*estimated* winter21 counts; the percentile bounds are computed with numpy's default ``linear``
interpolation over all 10,450 classes, and a class is in the band when ``lo <= count <= hi``
(both bounds inclusive).
"""

from __future__ import annotations

import numpy as np

from .common import subset_tables


def _band(counts: np.ndarray, lo_pct: float, hi_pct: float, interpolation: str, inclusive: bool) -> np.ndarray:
    lo, hi = np.percentile(counts, [lo_pct, hi_pct], method=interpolation)
    if inclusive:
        return (counts >= lo) & (counts <= hi)
    return (counts > lo) & (counts < hi)


def build_all_classes(taxonomy, **rule):
    return subset_tables(taxonomy, np.arange(taxonomy.num_classes), rule)


def build_frequency(
    taxonomy, *, half_width: float, center: float = 50.0, interpolation: str = "linear", inclusive: bool = True, **rule
):
    mask = _band(taxonomy.train_count, center - half_width, center + half_width, interpolation, inclusive)
    return subset_tables(
        taxonomy,
        np.flatnonzero(mask),
        dict(rule, half_width=half_width, center=center, interpolation=interpolation, inclusive=inclusive),
    )


def imbalanced_mask(
    counts: np.ndarray, band_half_width: float, top_fraction: float, interpolation: str, inclusive: bool
) -> np.ndarray:
    band = _band(counts, 50.0 - band_half_width, 50.0 + band_half_width, interpolation, inclusive)
    top_lo = np.percentile(counts, 100.0 * (1.0 - top_fraction), method=interpolation)
    top = counts >= top_lo
    return band | top


def build_imbalanced(
    taxonomy,
    *,
    band_half_width: float,
    top_fraction: float,
    interpolation: str = "linear",
    inclusive: bool = True,
    **rule,
):
    mask = imbalanced_mask(taxonomy.train_count, band_half_width, top_fraction, interpolation, inclusive)
    return subset_tables(
        taxonomy,
        np.flatnonzero(mask),
        dict(
            rule,
            band_half_width=band_half_width,
            top_fraction=top_fraction,
            interpolation=interpolation,
            inclusive=inclusive,
        ),
    )


def centered_window(counts: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` classes of the contiguous window of the count ranking (sorted by (count, class index))
    centred on the median: ranks ``(len - n) // 2 .. (len - n) // 2 + n - 1``."""
    if not 0 < n <= len(counts):
        raise ValueError(f"centered window: expected 1..{len(counts)} classes, found {n}")
    order = np.lexsort((np.arange(len(counts)), counts))
    start = (len(counts) - n) // 2
    return order[start : start + n]


def build_centered(taxonomy, *, match: dict | None = None, num_classes: int | None = None, **rule):
    """The window of the count ranking centred on the median. v1: as many classes as ``imbalanced-2k``
    (``match`` holds its rule); v2: a fixed ``num_classes`` (the paper's 2,113)."""
    counts = taxonomy.train_count
    if match is not None:
        n = int(
            imbalanced_mask(
                counts, match["band_half_width"], match["top_fraction"], match["interpolation"], match["inclusive"]
            ).sum()
        )
        return subset_tables(
            taxonomy,
            centered_window(counts, n),
            dict(rule, match=match, num_classes=n, window="rank window centred on the median"),
        )
    if num_classes is None:
        raise ValueError("centered window: expected match or num_classes, found neither")
    return subset_tables(taxonomy, centered_window(counts, int(num_classes)), dict(rule, num_classes=int(num_classes)))


def build_wordnet_leaf(taxonomy, *, exclude_instances: bool = False, **rule):
    """Classes with no hyponym in WordNet (no child in ``wordnet.is_a.txt``); with ``exclude_instances``
    (v2) also not a WordNet instance synset (instances are not hyponyms)."""
    mask = taxonomy.is_wordnet_leaf.copy()
    if exclude_instances:
        if taxonomy.is_wordnet_instance is None:
            raise ValueError(
                f"wordnet-leaf: expected a taxonomy with instance flags (v2 or later), found version {taxonomy.version}"
            )
        mask &= ~taxonomy.is_wordnet_instance
        rule = dict(rule, exclude_instances=True)
    return subset_tables(taxonomy, np.flatnonzero(mask), rule)


def build_miil_leaf(taxonomy, **rule):
    return subset_tables(taxonomy, np.flatnonzero(taxonomy.is_miil_leaf), rule)


def build_random(taxonomy, *, num_classes: int, seed: int, **rule):
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(taxonomy.num_classes, size=num_classes, replace=False))
    return subset_tables(
        taxonomy,
        chosen,
        dict(
            rule,
            num_classes=num_classes,
            seed=seed,
            sampler="numpy.random.default_rng(seed).choice(n, size, replace=False)",
        ),
    )
