"""Coarse relabelings ``coarse-d1`` .. ``coarse-d9``.

v1 rule (:func:`build_coarse`): every class deeper than hierarchy level ``d`` (level = depth + 1,
roots are level 1) takes the label of its MIIL-tree ancestor at level ``d``; classes at level <= d
keep their own label.

v2 rule (:func:`build_coarse_one_step`, reproduces the class counts the paper publishes): a class
whose MIIL depth (roots 0) exceeds ``d`` takes the label of its *direct WordNet hypernym* -- the
parent on the last line of ``wordnet.is_a.txt`` naming it as child, the same parent choice that
rebuilds the MIIL tree -- applied once, not recursively, and whether or not that hypernym is one of
the 10,450 classes (it may be an extra synset of the v2 taxonomy); other classes keep their label.

Both: no sample is dropped; C = the number of distinct labels.
"""

from __future__ import annotations

import numpy as np

from .common import class_level_tables


def build_coarse(taxonomy, *, level: int, **rule):
    target = taxonomy.ancestor_at_level_all(level)
    return class_level_tables(taxonomy, np.arange(taxonomy.num_classes), target, dict(rule, level=level))


def one_step_targets(taxonomy, depth_threshold: int) -> np.ndarray:
    """Node index of every class's label under the one-step rule with threshold ``depth_threshold``."""
    target = np.arange(taxonomy.num_classes, dtype=np.int64)
    deep = np.flatnonzero(taxonomy.depth > depth_threshold)
    hyper = taxonomy.hypernym_nodes()[deep]
    if (hyper < 0).any():  # a class below a root always has a hypernym; defensive
        raise ValueError("coarse: a class deeper than the threshold has no WordNet hypernym")
    target[deep] = hyper
    return target


def build_coarse_one_step(taxonomy, *, depth_threshold: int, **rule):
    target = one_step_targets(taxonomy, depth_threshold)
    return class_level_tables(
        taxonomy, np.arange(taxonomy.num_classes), target, dict(rule, depth_threshold=depth_threshold)
    )
