""":class:`EvaluationResult`: the scores of one prediction set, as a pydantic model.

Its metric fields are generated from :data:`~in21k_bench.scoring.metric_spec.METRICS` (one field per metric
``key`` and one ``key_std`` for the spread over ReaL label draws), and :meth:`EvaluationResult.table`
prints them in that order. The JSON (``model_dump``) is what ``in21k-bench evaluate --json`` prints
and what leaderboard submissions store.
"""

from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, create_model

from ..scoring.matching import MATCHING
from ..scoring.metric_spec import METRICS, format_value
from ..version import __version__

__all__ = ["EvaluationResult", "MATCHING"]


class _ResultMethods(BaseModel):
    """Behaviour of :class:`EvaluationResult` (its fields are declared below from the metric list)."""

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def from_metrics(
        cls,
        res: dict,
        *,
        benchmark: str,
        version: str | None,
        num_classes: int,
        num_clusters: int,
        k: int,
        predictions_sha256: str | None,
        excluded: int = 0,
        **extra: Any,
    ) -> "EvaluationResult":
        """Build from the dict of :func:`in21k_bench.scoring.metrics.score`; ``excluded`` adds rows left out
        before scoring (ReaL: unscored source images) to the empty-set exclusions; ``extra`` sets
        further fields (``labels_source``, ``labels_sha256``)."""
        fields = {key: res[key] for key in cls.model_fields if key in res and key != "per_class_acc"}
        pca = res.get("per_class_acc")
        return cls(
            **fields,
            **extra,
            benchmark=benchmark,
            version=version,
            num_classes=num_classes,
            num_clusters=num_clusters,
            k=k,
            excluded=int(res.get("excluded_empty_sets", 0)) + int(excluded),
            package_version=__version__,
            predictions_sha256=predictions_sha256,
            per_class_acc=None if pca is None else [float(x) for x in pca],
        )

    def to_json_dict(self) -> dict:
        return self.model_dump(mode="json")

    def table(self) -> str:
        """Human-readable summary, one line per metric (conditional metrics only when reported)."""
        real = self.num_draws is not None
        head = f"benchmark {self.benchmark} {self.version or ''}".rstrip()
        lines = [
            head,
            f"  samples {self.n:,}   clusters K={self.num_clusters:,}   classes C={self.num_classes:,}   ranked "
            f"k={self.k}   matching {self.matching}",
        ]
        if self.labels_source:
            lines.append(f"  labels {self.labels_source}")
        if real:
            lines.append(
                f"  ReaL protocol: {self.num_draws} label draws (seeds 0..{self.num_draws - 1}), mean +- std; "
                f"{self.excluded} images with an empty ReaL set excluded"
            )
        for spec in METRICS:
            v = getattr(self, spec.key)
            if v is None and spec.conditional:
                continue
            std = getattr(self, spec.std_key) if real else None
            lines.append(f"  {spec.label:<34}{format_value(spec, v, std)}")
        lines.append(f"  predictions sha256 {self.predictions_sha256 or '-'}   in21k-bench {self.package_version}")
        return "\n".join(lines)


def _fields() -> dict:
    """Every field of :class:`EvaluationResult`, in JSON order."""
    f: dict = {
        "benchmark": (str, ...),
        "version": (Optional[str], None),
        "n": (int, Field(..., description="number of scored samples")),
        "num_clusters": (int, Field(..., description="K, number of cluster ids allowed")),
        "num_classes": (int, Field(..., description="C, number of labels")),
        "k": (int, Field(..., description="ranked clusters per sample given (1 = top-1 only)")),
        "matching": (str, MATCHING),
    }
    for spec in METRICS:
        f[spec.key] = (Optional[float], Field(None, description=spec.description))
    for spec in METRICS:
        f[spec.std_key] = (
            Optional[float],
            Field(None, description=f"ReaL protocol: population std of {spec.key} over the label draws"),
        )
    f.update(
        num_draws=(
            Optional[int],
            Field(
                None,
                description="ReaL protocol: label draws (seeds 0..num_draws-1); metrics are means, "
                "*_std population std",
            ),
        ),
        excluded=(
            int,
            Field(0, description="samples excluded (ReaL: images with an empty set, and unscored source images)"),
        ),
        reliability=(
            Optional[dict],
            Field(None, description="per-bin count / confidence / accuracy of the reliability diagram"),
        ),
        labels_source=(
            Optional[str],
            Field(
                None,
                description="where the labels came from when no benchmark was named (labels file or feature store)",
            ),
        ),
        labels_sha256=(
            Optional[str],
            Field(None, description="sha256 of the labels file (or of the labels array's .npy serialisation)"),
        ),
        package_version=(str, ...),
        predictions_sha256=(Optional[str], None),
        provenance=(
            Optional[dict],
            Field(
                None,
                description="what produced the predictions: package version, benchmark manifest version + sha256, "
                "backbone and preprocessing from the run record (None where unknown; see "
                "in21k_bench.evaluation.provenance)",
            ),
        ),
        per_class_acc=(
            Optional[list[float]],
            Field(None, exclude=True, description="per-label ACC (NaN without samples); not in JSON"),
        ),
    )
    return f


EvaluationResult = create_model(
    "EvaluationResult",
    __base__=_ResultMethods,
    __module__=__name__,
    __doc__=(
        "Scores of one prediction set. ``acc`` is the one-to-one Hungarian ACC; ``majority_acc`` the "
        "many-to-one majority-vote ACC; ``acc_temi_overcluster`` (K > C) the over-clustering ACC of TEMI's "
        "evaluation code. Metric fields follow :data:`in21k_bench.scoring.metric_spec.METRICS`."
    ),
    **_fields(),
)
