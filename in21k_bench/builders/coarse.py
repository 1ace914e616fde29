"""Coarse relabelings ``coarse-d1`` .. ``coarse-d9``.

Rule: every class deeper than hierarchy level ``d`` (level = depth + 1, roots are level 1) takes
the label of its MIIL-tree ancestor at level ``d``; classes at level <= d keep their own label. No
sample is dropped; C = the number of distinct labels.
"""

from __future__ import annotations

import numpy as np

from .common import class_level_tables


def build_coarse(taxonomy, *, level: int, **rule):
    target = taxonomy.ancestor_at_level_all(level)
    return class_level_tables(taxonomy, np.arange(taxonomy.num_classes), target, dict(rule, level=level))
