"""Distribution through the Hugging Face hub: download (sha256-verified, offline-friendly) and publish.

Layout of the dataset repository (see ``docs/hub.md``)::

    splits/index.json                           # the package index (sha256 + size of every manifest)
    splits/<version>/<benchmark>/*.parquet      # the same files as the package's ``splits/``
    relabels/<version>/<p-hzr|leaf-hzr>.parquet # sample-level relabel files
    scores/<version>/<clip|dinov2|sup>.parquet  # per-class probe-score files
    features/<backbone>/<train|val>/...         # feature stores (meta.json, index.parquet, shard-*.npy)
    checksums.json                              # sha256 + size of every file above
    README.md                                   # dataset card, YAML ``configs:`` from the registry

Versions are git tags (``v1``, ...). The package index pins each version to a commit
(``index["hub"]["revisions"][version]``); until a version is pinned the tag itself is used.
The package index is the authority: every downloaded file is checked against a sha256 (the hub
client itself only checks sizes): manifests against the package index, whose entries the hub's
own ``splits/index.json`` must repeat exactly; other files against the package index where it
records them, else against ``checksums.json`` at the same revision (itself pinned by the package
index where recorded); feature shards against their store's ``meta.json``. A mismatch deletes the
bad cached copy (snapshot link and blob) and raises :class:`~in21k_bench.errors.ChecksumError`.

Modules, by capability: :mod:`.config` (index, repository, revision), :mod:`.verify` (sha256,
eviction, index agreement), :mod:`.fetch` (one file, reachability probe), :mod:`.download`,
:mod:`.card` (dataset card), :mod:`.publish`.
"""

from __future__ import annotations

from ..errors import HubError, HubOfflineError, ReleasedVersionError
from . import config
from .card import card_configs, render_card
from .config import (
    CARD_NAME,
    CHECKSUMS_NAME,
    FEATURE_SPLITS,
    RELABEL_MODES,
    REPO_TYPE,
    SCORE_MODELS,
    SPLITS_PREFIX,
    hub_config,
    resolve_repo_and_revision,
)
from .download import (
    download_all_inputs,
    download_feature_splits,
    download_features,
    download_files,
    download_inputs,
    download_manifest,
    download_relabels,
    download_scores,
    input_hub_path,
    install_input,
)
from .fetch import endpoint_reachable
from .publish import PublishPlan, check_not_released, collect_publish_files, publish, record_release, released_tags
from .verify import clear_verified, index_disagreement

__all__ = [
    "CARD_NAME",
    "CHECKSUMS_NAME",
    "FEATURE_SPLITS",
    "RELABEL_MODES",
    "REPO_TYPE",
    "SCORE_MODELS",
    "SPLITS_PREFIX",
    "HubError",
    "HubOfflineError",
    "PublishPlan",
    "ReleasedVersionError",
    "card_configs",
    "check_not_released",
    "clear_verified",
    "collect_publish_files",
    "config",
    "download_all_inputs",
    "download_feature_splits",
    "download_features",
    "download_files",
    "download_inputs",
    "download_manifest",
    "download_relabels",
    "download_scores",
    "endpoint_reachable",
    "hub_config",
    "index_disagreement",
    "input_hub_path",
    "install_input",
    "publish",
    "record_release",
    "released_tags",
    "render_card",
    "resolve_repo_and_revision",
]
