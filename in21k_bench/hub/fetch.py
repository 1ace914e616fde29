"""One file from the hub: download through ``huggingface_hub``, verify, evict and retry once.

Hub errors become one-line :class:`~in21k_bench.errors.In21kError` s. An unreachable endpoint is
detected before the first request (a short probe, :func:`endpoint_reachable`): the client would
otherwise retry every request five times with backoff (about 25 s) before giving up. When the
probe fails, files are served from the hub cache only, and a missing one fails at once with the
offline / mirror hint.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from ..errors import ChecksumError, HubError, HubOfflineError, InvalidInputError
from .config import REPO_TYPE, cache_dir_display, offline
from .verify import check_file, evict

#: Seconds the reachability probe waits for the endpoint (connect + first response).
PROBE_TIMEOUT = 3.0


@dataclass
class Source:
    """Where files come from: repository, revision, cache, and the command that fetches them elsewhere."""

    repo_id: str
    revision: str
    cache_dir: str | os.PathLike | None
    fetch_hint: str  # the command that fetches this on a connected machine
    endpoint: str | None = None
    fetched: list[str] = field(default_factory=list)
    unreachable: str | None = None  # why the endpoint cannot be reached (set by the first probe)
    probed: bool = False

    def where(self) -> str:
        return f"{self.repo_id}@{self.revision}"

    def endpoint_url(self) -> str:
        from huggingface_hub import constants

        return (self.endpoint or constants.ENDPOINT).rstrip("/")


def transport_errors() -> tuple[type[BaseException], ...]:
    """Exception types of a failed connection in the hub client (its HTTP library's base error + OSError)."""
    try:
        import httpx2

        return (httpx2.HTTPError, OSError)
    except ImportError:  # pragma: no cover -- other client versions
        return (OSError,)


def endpoint_reachable(endpoint: str, timeout: float = PROBE_TIMEOUT) -> str | None:
    """None when ``endpoint`` answers an HTTP request within ``timeout`` seconds (any status), else why not.

    Goes through the proxy the environment names for the endpoint, as the hub client does. One
    request, no retries (each download call probes once)."""
    reason: str | None = None
    try:
        import httpx2

        host = urlsplit(endpoint).hostname or ""
        proxies = urllib.request.getproxies()
        proxy = None if urllib.request.proxy_bypass(host) else proxies.get(urlsplit(endpoint).scheme)
        with httpx2.Client(timeout=timeout, proxy=proxy, trust_env=False, follow_redirects=False) as client:
            client.head(endpoint + "/")
    except ImportError:  # pragma: no cover -- other client versions: let the client find out
        reason = None
    except Exception as exc:  # noqa: BLE001 -- any failure to get an answer means "unreachable"
        first = (str(exc).splitlines() or [""])[0][:120]
        reason = f"{type(exc).__name__}" + (f": {first}" if first else "")
    return reason


def _missing(src: Source, path: str, why: str) -> HubOfflineError:
    return HubOfflineError(
        f"hub: expected {path} of {src.where()} in the hub cache {cache_dir_display(src.cache_dir)}, found none and "
        f"{why}; on a connected machine run `{src.fetch_hint}` and copy its hub cache here (or point HF_HUB_CACHE at a "
        "copy), or set HF_ENDPOINT to a reachable mirror; HF_HUB_OFFLINE=1 skips the network"
    )


def fetch_raw(src: Source, path: str) -> Path:
    """``hf_hub_download`` one file; hub errors become one-line :class:`In21kError` s."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if not src.probed and not offline():
        src.unreachable = endpoint_reachable(src.endpoint_url())
        src.probed = True
    local_only = bool(src.unreachable) and not offline()
    try:
        local = hf_hub_download(
            src.repo_id,
            path,
            repo_type=REPO_TYPE,
            revision=src.revision,
            cache_dir=src.cache_dir,
            endpoint=src.endpoint,
            library_name="in21k-bench",
            local_files_only=local_only,
        )
    except RevisionNotFoundError:
        raise HubError(
            f"hub: expected revision {src.revision!r} in {src.repo_id}, found none (is the version released? "
            "pass --revision for an unreleased commit)"
        ) from None
    except RemoteEntryNotFoundError:
        raise HubError(f"hub: expected {path} in {src.where()}, found no such file") from None
    except RepositoryNotFoundError:
        raise HubError(
            f"hub: expected the dataset repository {src.repo_id}, found none (or it is private: set HF_TOKEN)"
        ) from None
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as exc:
        if offline():
            why = "offline mode is on (HF_HUB_OFFLINE=1)"
        elif local_only:
            why = f"the hub at {src.endpoint_url()} is unreachable ({src.unreachable})"
        else:
            why = f"the hub is unreachable ({type(exc.__cause__ or exc).__name__})"
        raise _missing(src, path, why) from None
    except HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", "?")
        raise HubError(f"hub: expected {path} from {src.where()}, found HTTP {status}") from None
    except ValueError as exc:  # bad repo id / filename
        raise InvalidInputError(
            f"hub: expected a valid repository and path, found {src.repo_id!r} / {path!r} ({exc})"
        ) from None
    except transport_errors() as exc:  # the transfer failed after the client's own retries
        first = (str(exc).splitlines() or [""])[0][:160]
        raise HubError(
            f"hub: expected to download {path} from {src.where()}, found {type(exc).__name__}: {first}; run the "
            "command again to resume"
        ) from None
    src.fetched.append(path)
    return Path(local)


def fetch_verified(src: Source, path: str, expected: Mapping[str, Any] | None, trusted_by: str, verify=None) -> Path:
    """Download one file and check it; a bad copy is evicted and downloaded again once, then rejected.

    ``expected`` = ``{"sha256", "size"}``; ``verify`` (alternative) = a callable returning None or a mismatch text."""
    for attempt in (0, 1):
        local = fetch_raw(src, path)
        problem = check_file(local, expected) if expected is not None else verify(local)
        if problem is None:
            return local
        removed = evict(local)
        print(
            f"hub: {path} from {src.where()} failed verification ({problem}); removed the cached copy", file=sys.stderr
        )
        if attempt == 1 or offline() or src.unreachable:
            raise ChecksumError(
                f"hub {src.where()} {path}: {problem} ({trusted_by}); the bad copy was removed from the cache "
                f"({len(removed)} file(s)); the file on the hub or in transit is corrupt"
            )
    raise AssertionError("unreachable")
