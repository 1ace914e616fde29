"""Where a verified entry's prediction files are, and fetching the remote ones for re-scoring.

Each run of a ``verified`` entry records one location in ``predictions``:

- a committed file (or prediction folder): a path relative to the submission's folder (the sidecar
  folder ``submissions/<benchmark>/<slug>/`` is the usual place, see ``submit --copy-predictions``),
  to the repository, or to the current folder;
- a URL ``https://...`` (or ``http://``), or a hub path ``hf://datasets/ORG/NAME@REVISION/PATH``
  (also ``hf://models/...``, ``hf://spaces/...``), which ``leaderboard check --fetch`` downloads and
  checks against the run's recorded sha256 before scoring it.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from ..errors import InvalidSubmissionError

URL_RE = re.compile(r"^https?://[^\s]+$")
HF_PATH_RE = re.compile(r"^hf://(datasets|models|spaces)/([A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*)@([^/\s]+)/(\S+)$")


def is_remote(location: str) -> bool:
    """True for a URL or a hub path (fetched by ``check --fetch``), False for a path on disk."""
    return location.startswith(("http://", "https://", "hf://"))


def remote_problem(location: str) -> str | None:
    """None when ``location`` is a well-formed URL or hub path, else what is wrong with it."""
    if location.startswith("hf://"):
        if not HF_PATH_RE.match(location):
            return f"expected a hub path hf://datasets/ORG/NAME@REVISION/PATH, found {location!r}"
    elif not URL_RE.match(location):
        return f"expected an http(s) URL, found {location!r}"
    return None


def resolve_local(recorded: str, sub_file: Path, root: Path) -> Path | None:
    """Where a recorded prediction file (or prediction folder) is today: as given (absolute, or
    relative to the current folder), relative to the repository (the leaderboard's parent) or to the
    submission's folder, or by name in the sidecar folder ``submissions/<benchmark>/<slug>/``.
    None when absent (and for remote locations)."""
    if is_remote(recorded):
        return None
    rec = Path(recorded)
    candidates = [rec] if rec.is_absolute() else [Path.cwd() / rec, root.parent / rec, sub_file.parent / rec]
    candidates.append(sub_file.parent / sub_file.stem / rec.name)
    for c in candidates:
        if c.is_file() or c.is_dir():
            return c
    return None


def _suffix(location: str) -> str:
    name = location.rsplit("/", 1)[-1].split("?", 1)[0]
    suffix = Path(name).suffix.lower()
    return suffix if suffix in (".npy", ".csv", ".parquet") else ".npy"


def _download_url(url: str, dest: Path, max_bytes: int) -> None:
    import httpx2

    try:
        with httpx2.stream("GET", url, timeout=30.0, follow_redirects=True) as r:
            if r.status_code != 200:
                raise InvalidSubmissionError(f"fetch {url}: expected HTTP 200, found {r.status_code}")
            size = 0
            with open(dest, "wb") as f:
                for chunk in r.iter_bytes(1 << 20):
                    size += len(chunk)
                    if size > max_bytes:
                        raise InvalidSubmissionError(f"fetch {url}: expected <= {max_bytes} bytes, found more")
                    f.write(chunk)
    except httpx2.HTTPError as exc:
        raise InvalidSubmissionError(
            f"fetch {url}: expected to download it, found {type(exc).__name__}: {str(exc)[:120]}"
        ) from None


def _download_hub(location: str, dest: Path, max_bytes: int) -> None:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    kind, repo, revision, path = HF_PATH_RE.match(location).groups()  # type: ignore[union-attr]
    try:
        local = Path(
            hf_hub_download(repo, path, repo_type=kind.rstrip("s"), revision=revision, library_name="in21k-bench")
        )
    except (HfHubHTTPError, LocalEntryNotFoundError, ValueError, OSError) as exc:
        raise InvalidSubmissionError(
            f"fetch {location}: expected to download it from the hub, found {type(exc).__name__}"
        ) from None
    if local.stat().st_size > max_bytes:
        raise InvalidSubmissionError(f"fetch {location}: expected <= {max_bytes} bytes, found {local.stat().st_size}")
    dest.write_bytes(local.read_bytes())


def fetch_remote(location: str, sha256: str, folder: Path, max_bytes: int) -> Path:
    """Download a remote prediction file into ``folder`` and check its sha256; returns the local copy.

    A wrong sha256 or an oversized file raises :class:`InvalidSubmissionError` (one line)."""
    problem = remote_problem(location)
    if problem:
        raise InvalidSubmissionError(f"fetch: {problem}")
    dest = Path(folder) / f"{sha256}{_suffix(location)}"
    if not dest.is_file():
        tmp = dest.with_name(dest.name + ".part")
        (_download_hub if location.startswith("hf://") else _download_url)(location, tmp, max_bytes)
        tmp.replace(dest)
    h = hashlib.sha256()
    with open(dest, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    if h.hexdigest() != sha256:
        dest.unlink()
        raise InvalidSubmissionError(
            f"fetch {location}: expected sha256 {sha256[:12]}..., found {h.hexdigest()[:12]}..."
        )
    return dest
