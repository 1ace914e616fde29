"""Submission records: the pydantic schema, metric names and units, slugs.

Units: every accuracy (``acc``, ``top1_L``, ``top5_1``, ``top5_L``, ``majority_acc``) and ``ece`` is
stored as a **fraction in [0, 1]**, exactly as the evaluator reports it; NMI is in [0, 1] and ARI
in [-1, 1]. Published numbers given in % are divided by 100 when recorded.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from typing import Any, Literal, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..scoring.metric_spec import LEADERBOARD_METRICS, RANK_METRIC
from .run_files import is_remote, remote_problem

SCHEMA_VERSION = 1

#: Metric keys a submission may carry, in display order, with their column labels
#: (the leaderboard columns of :data:`in21k_bench.scoring.metric_spec.METRICS`).
METRICS: dict[str, str] = {m.key: m.short for m in LEADERBOARD_METRICS}
#: Metrics displayed as percentages (fractions stored).
PERCENT_METRICS: tuple[str, ...] = tuple(m.key for m in LEADERBOARD_METRICS if m.percent)

#: Largest accepted submission JSON file and prediction file (bytes).
MAX_SUBMISSION_BYTES = 64 * 1024
MAX_PREDICTION_BYTES = 50 * 1024 * 1024

#: Tolerance when comparing stored metrics with recomputed ones.
METRIC_TOL = 1e-9

_SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_URL_RE = re.compile(r"^https?://[^\s]+$")


def _std(values: Sequence[float]) -> float | None:
    """Sample standard deviation (ddof=1); None for fewer than two runs."""
    if len(values) < 2:
        return None
    return float(np.std(np.asarray(values, dtype=np.float64), ddof=1))


def _close(a: float | None, b: float | None, tol: float = METRIC_TOL) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)


class MetricStat(BaseModel):
    """One metric over the runs of a submission.

    ``runs`` holds the per-run values of a verified entry (empty for reported numbers), ``mean``
    their mean and ``std`` their sample standard deviation (``ddof=1``; None for a single run or
    when a publication gives no spread).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    mean: float
    std: float | None = None
    runs: list[float] = Field(default_factory=list)

    @field_validator("mean", "std")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError(f"expected a finite number, found {v}")
        return v

    @field_validator("runs")
    @classmethod
    def _finite_runs(cls, v: list[float]) -> list[float]:
        bad = [x for x in v if not math.isfinite(x)]
        if bad:
            raise ValueError(f"expected finite per-run values, found {bad[0]}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "MetricStat":
        if self.std is not None and self.std < 0:
            raise ValueError(f"expected std >= 0, found {self.std}")
        if self.runs:
            mean = float(np.mean(self.runs))
            if not _close(self.mean, mean):
                raise ValueError(f"mean {self.mean} is not the mean of the runs ({mean})")
            std = _std(self.runs)
            if not _close(self.std, std):
                raise ValueError(f"std {self.std} is not the ddof=1 std of the runs ({std})")
        return self

    @classmethod
    def from_runs(cls, values: Sequence[float]) -> "MetricStat":
        vals = [float(v) for v in values]
        return cls(mean=float(np.mean(vals)), std=_std(vals), runs=vals)


class BackboneRecord(BaseModel):
    """The feature store's backbone record (``meta.json`` ``backbone``); further keys are kept."""

    model_config = ConfigDict(extra="allow")

    name: str | None = None
    spec: str | None = None
    loader: str | None = None
    weights: str | None = None
    checkpoint_sha256: str | None = None
    pretrained: bool | None = None
    dim: int | None = None


class PreprocessingRecord(BaseModel):
    """The feature store's image preprocessing (``meta.json`` ``preprocessing``); further keys are kept."""

    model_config = ConfigDict(extra="allow")

    mode: str | None = None
    resize: int | None = None
    crop: int | None = None
    interpolation: str | None = None
    mean: list[float] | None = None
    std: list[float] | None = None


class Provenance(BaseModel):
    """What produced an entry (see :mod:`in21k_bench.evaluation.provenance`); None where unknown. A verified entry
    needs every field :func:`in21k_bench.evaluation.provenance.missing_fields` lists (``leaderboard check``)."""

    model_config = ConfigDict(extra="forbid")

    package_version: str | None = None
    benchmark: str | None = None
    manifest_version: str | None = None
    manifest_sha256: str | None = None
    manifest_files: dict[str, str] | None = None
    backbone: BackboneRecord | None = None
    preprocessing: PreprocessingRecord | None = None
    features: str | None = None

    @field_validator("manifest_sha256")
    @classmethod
    def _sha(cls, v: str | None) -> str | None:
        if v is not None and not SHA_RE.match(v):
            raise ValueError(f"expected 64 lower-case hex digits, found {v!r}")
        return v


class Submission(BaseModel):
    """A leaderboard entry (one method, one backbone, one benchmark version).

    Accuracies and ECE are fractions in [0, 1] (see the module docstring).
    """

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = SCHEMA_VERSION
    method: str = Field(min_length=1, max_length=100, description="Method name as displayed, e.g. 'TEMI'.")
    slug: str = Field(description="File name stem: lower-case letters, digits and single hyphens.")
    authors: list[str] = Field(default_factory=list, description="Who produced the entry.")
    paper_url: str | None = None
    code_url: str | None = None
    backbone: str = Field(min_length=1, max_length=100, description="Feature backbone, e.g. 'iBOT ViT-L (IN-21K)'.")
    benchmark: str = Field(min_length=1)
    benchmark_version: str = Field(pattern=r"^v[0-9]+$")
    package_version: str | None = Field(
        None, description="in21k-bench version that evaluated the runs (None: reported)."
    )
    num_runs: int = Field(ge=1, description="Number of runs (seeds) the metrics summarise.")
    predictions_sha256: list[str] = Field(default_factory=list, description="sha256 of each run's prediction file.")
    predictions: list[str] = Field(default_factory=list, description="Where each run's prediction file was (optional).")
    metrics: dict[str, MetricStat]
    status: Literal["verified", "unchecked", "reported"] = Field(
        description="verified: scored by submit, prediction files available for re-scoring; unchecked: scored by "
        "submit, prediction files not available (shown apart); reported: published numbers."
    )
    supervised: bool = Field(False, description="True for supervised upper bounds (linear probe); ranked apart.")
    source: str | None = Field(None, description="Citation of a reported entry (table, paper).")
    date: _dt.date
    num_clusters: int | None = Field(None, ge=1)
    num_samples: int | None = Field(None, ge=1)
    notes: str | None = None
    provenance: Provenance | None = Field(
        None,
        description="What produced the runs: package and manifest version + sha256, backbone and preprocessing "
        "(from the runs' records; required complete for a verified entry by `leaderboard check`).",
    )

    @field_validator("slug")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not _SLUG_RE.match(v) or len(v) > 80:
            raise ValueError(f"expected lower-case letters, digits and single hyphens (<= 80 chars), found {v!r}")
        return v

    @field_validator("paper_url", "code_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not _URL_RE.match(v):
            raise ValueError(f"expected an http(s) URL, found {v!r}")
        return v

    @field_validator("predictions_sha256")
    @classmethod
    def _shas(cls, v: list[str]) -> list[str]:
        for s in v:
            if not SHA_RE.match(s):
                raise ValueError(f"expected 64 lower-case hex digits, found {s!r}")
        return v

    @field_validator("metrics")
    @classmethod
    def _metric_keys(cls, v: dict[str, MetricStat]) -> dict[str, MetricStat]:
        unknown = sorted(set(v) - set(METRICS))
        if unknown:
            raise ValueError(f"expected metric names among {list(METRICS)}, found {unknown}")
        if RANK_METRIC not in v:
            raise ValueError(f"expected the ranking metric {RANK_METRIC!r}, found only {sorted(v)}")
        for name, stat in v.items():
            lo = -1.0 if name == "ari" else 0.0
            for x in [stat.mean, *stat.runs]:
                if not lo <= x <= 1.0:
                    raise ValueError(f"{name}: expected a value in [{lo:g}, 1] (fractions, not %), found {x}")
        return v

    @model_validator(mode="after")
    def _rules(self) -> "Submission":
        if self.status in ("verified", "unchecked"):
            if len(self.predictions_sha256) != self.num_runs:
                raise ValueError(
                    f"{self.status} entry: expected one predictions_sha256 per run ({self.num_runs}), found "
                    f"{len(self.predictions_sha256)}"
                )
            for name, stat in self.metrics.items():
                if len(stat.runs) != self.num_runs:
                    raise ValueError(
                        f"{self.status} entry: metric {name} expected {self.num_runs} per-run values, found "
                        f"{len(stat.runs)}"
                    )
            if not self.package_version:
                raise ValueError(f"{self.status} entry: expected the package_version that evaluated it, found none")
        else:
            if not (self.source and self.source.strip()):
                raise ValueError("reported entry: expected a source (citation), found none")
        if self.status == "verified" and not self.predictions:
            raise ValueError(
                "verified entry: expected one prediction file location per run (committed path, URL or hf:// path) "
                "that `leaderboard check` re-scores, found none; without them the entry is 'unchecked'"
            )
        if self.predictions and len(self.predictions) != self.num_runs:
            raise ValueError(f"expected one predictions path per run ({self.num_runs}), found {len(self.predictions)}")
        for loc in self.predictions:
            problem = remote_problem(loc) if is_remote(loc) else None
            if problem:
                raise ValueError(f"predictions: {problem}")
        return self

    # convenience ---------------------------------------------------------------------------------
    @property
    def rank_value(self) -> float:
        return self.metrics[RANK_METRIC].mean

    @property
    def key(self) -> tuple[str, str, str, str]:
        """Identity for duplicate detection: benchmark, version, backbone, method (case-insensitive)."""
        norm = lambda s: " ".join(s.lower().split())  # noqa: E731
        return (self.benchmark, self.benchmark_version, norm(self.backbone), norm(self.method))

    def to_json_dict(self) -> dict[str, Any]:
        d = self.model_dump(mode="json")
        if d.get("provenance") is None:  # entries without provenance serialise as before it existed
            d.pop("provenance", None)
        return d


def validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err.get("loc", ())) or "record"
        msg = err.get("msg", "invalid").removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


def slugify(text: str) -> str:
    """Lower-case, every run of non-alphanumerics becomes one hyphen: 'iBOT ViT-L (IN-21K)' -> 'ibot-vit-l-in-21k'."""
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return s[:80].rstrip("-")
