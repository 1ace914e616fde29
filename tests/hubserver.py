"""A small local stand-in for the Hugging Face hub's file routes, for tests with the real client.

It serves ``HEAD``/``GET /{datasets|spaces}/{org}/{name}/resolve/{revision}/{path}`` (and the model form
without prefix) from local folders, one folder per commit, with the headers ``huggingface_hub`` reads:
``X-Repo-Commit``, ``ETag`` (git blob sha1 for small files; for LFS-like files -- ``.parquet``,
``.npy`` -- the sha256, also as ``X-Linked-Etag`` with ``X-Linked-Size``), ``Content-Length``, and
``X-Error-Code`` on 404 (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``), as the client maps
those to its exception types. ``Range: bytes=N-[M]`` gets a ``206`` with ``Content-Range``.

Fault injection:
- :meth:`HubServer.corrupt` serves a file with one byte flipped (same size, same announced ETag), as a
  corrupt storage object would be;
- :meth:`HubServer.drop_once` sends the headers of a file and only part of its body, then closes the
  connection, once.

Upload API (enough for ``HfApi.create_repo / create_commit / create_tag / list_repo_refs`` with small
files): ``POST /api/repos/create``, ``POST /api/validate-yaml``, ``POST /api/{type}s/{repo}/preupload/{rev}``
(every file "regular", i.e. inlined in the commit), ``POST /api/{type}s/{repo}/commit/{rev}`` (NDJSON;
the new commit is a copy of the branch's folder plus the added files, under :attr:`HubServer.store`),
``POST /api/{type}s/{repo}/tag/{rev}`` (409 when the tag exists) and ``GET /api/{type}s/{repo}/refs``.

Every request is logged in :attr:`HubServer.requests` as ``(method, path, range header or None)``.
Each response carries ``Connection: close`` so that stopping the server really cuts the client off.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import socket
import tempfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

LFS_SUFFIXES = (".parquet", ".npy")
_RANGE_RE = re.compile(r"^bytes=(\d+)-(\d*)$")


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class _Repo:
    commits: dict[str, Path] = field(default_factory=dict)  # commit id -> folder
    refs: dict[str, str] = field(default_factory=dict)  # branch or tag -> commit id
    branches: set[str] = field(default_factory=set)


class HubServer:
    """Threaded HTTP server on 127.0.0.1 (random free port). Use :meth:`start` / :meth:`stop`."""

    def __init__(self) -> None:
        self.repos: dict[tuple[str, str], _Repo] = {}
        self.requests: list[tuple[str, str, str | None]] = []
        self._corrupt: set[str] = set()
        self._drop: dict[str, int] = {}
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""
        self.store: Path | None = None  # where commits made through the upload API are kept

    # ---------------------------------------------------------------------------------- content
    def add_commit(
        self, repo_id: str, folder: str | Path, *, tags=(), branch: str = "main", repo_type: str = "dataset"
    ) -> str:
        """Serve ``folder`` as a new commit of ``repo_id``; move ``branch`` and the ``tags`` to it."""
        folder = Path(folder)
        h = hashlib.sha1(f"{repo_type}/{repo_id}".encode())
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                h.update(p.relative_to(folder).as_posix().encode() + b"\0" + hashlib.sha256(p.read_bytes()).digest())
        repo = self.repos.setdefault((repo_type, repo_id), _Repo())
        h.update(str(len(repo.commits)).encode())
        commit = h.hexdigest()
        repo.commits[commit] = folder
        for ref in (branch, *tags):
            if ref:
                repo.refs[ref] = commit
        if branch:
            repo.branches.add(branch)
        return commit

    def corrupt(self, path: str) -> None:
        """Serve the repo file ``path`` (any repo, any revision) with one byte flipped from now on."""
        self._corrupt.add(path)

    def heal(self, path: str) -> None:
        self._corrupt.discard(path)

    def drop_once(self, path: str, after_bytes: int) -> None:
        """The next GET of ``path`` sends only ``after_bytes`` bytes of the body and closes the connection."""
        self._drop[path] = after_bytes

    def gets(self, path: str) -> list[str | None]:
        """Range headers of every GET of ``path`` so far (None for a full GET)."""
        return [r for m, p, r in self.requests if m == "GET" and p.endswith("/" + path)]

    # ---------------------------------------------------------------------------------- life cycle
    def start(self) -> "HubServer":
        server = self

        class Handler(_Handler):
            hub = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        host, port = self._httpd.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)
            self._httpd = None
        if self.store is not None:
            shutil.rmtree(self.store, ignore_errors=True)
            self.store = None

    def __enter__(self) -> "HubServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hub: HubServer

    def log_message(self, format, *args):  # noqa: A002 -- quiet
        pass

    def do_HEAD(self):  # noqa: N802
        self._resolve(head=True)

    def do_GET(self):  # noqa: N802
        if urlsplit(self.path).path.startswith("/api/"):
            return self._api("GET")
        self._resolve(head=False)

    def do_POST(self):  # noqa: N802
        self._api("POST")

    # ------------------------------------------------------------------------------------------
    def _json(self, status: int, obj) -> None:
        self._send(status, {"Content-Type": "application/json"}, json.dumps(obj).encode())

    def _api(self, method: str) -> None:
        hub = self.hub
        raw = urlsplit(self.path).path
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        with hub._lock:
            hub.requests.append((method, unquote(raw), None))
        if raw == "/api/repos/create" and method == "POST":
            req = json.loads(body)
            repo_id = f"{req.get('organization') or 'user'}/{req['name']}"
            key = (req.get("type") or "model", repo_id)
            if key in hub.repos:
                return self._error(409, "RepoExists", "You already created this repo", False)
            hub.repos[key] = _Repo()
            return self._json(200, {"url": f"{hub.url}/{key[0]}s/{repo_id}", "name": repo_id})
        if raw == "/api/validate-yaml":
            return self._json(200, {"errors": [], "warnings": []})
        m = re.match(r"^/api/(datasets|models|spaces)/([^/]+)/([^/]+)/(preupload|commit|tag|refs)(?:/([^/]+))?$", raw)
        if not m:
            return self._error(404, "NotFound", f"no route {raw}", False)
        repo_type, repo_id, action, rev = (
            m.group(1)[:-1],
            f"{unquote(m.group(2))}/{unquote(m.group(3))}",
            m.group(4),
            unquote(m.group(5) or ""),
        )
        repo = hub.repos.get((repo_type, repo_id))
        if repo is None:
            return self._error(404, "RepoNotFound", f"Repository {repo_id} not found", False)
        if action == "refs":
            branches = [
                {"name": k, "ref": f"refs/heads/{k}", "targetCommit": c}
                for k, c in repo.refs.items()
                if k in repo.branches
            ]
            tags = [
                {"name": k, "ref": f"refs/tags/{k}", "targetCommit": c}
                for k, c in repo.refs.items()
                if k not in repo.branches
            ]
            return self._json(200, {"branches": branches, "tags": tags, "converts": []})
        if action == "preupload":
            files = json.loads(body)["files"]
            return self._json(
                200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]}
            )
        if action == "tag":
            req = json.loads(body)
            commit = rev if rev in repo.commits else repo.refs.get(rev)
            if commit is None:
                return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}", False)
            if req["tag"] in repo.refs:
                return self._error(409, "TagExists", f"tag {req['tag']} already exists", False)
            repo.refs[req["tag"]] = commit
            return self._json(200, {})
        # commit
        items = [json.loads(line) for line in body.splitlines() if line.strip()]
        if hub.store is None:
            hub.store = Path(tempfile.mkdtemp(prefix="hubserver-"))
        folder = hub.store / f"commit-{sum(len(r.commits) for r in hub.repos.values())}"
        parent = repo.commits.get(repo.refs.get(rev, ""))
        if parent is not None:
            shutil.copytree(parent, folder)
        folder.mkdir(parents=True, exist_ok=True)
        for item in items:
            if item["key"] == "file":
                dst = folder / item["value"]["path"]
                dst.parent.mkdir(parents=True, exist_ok=True)
                dst.write_bytes(base64.b64decode(item["value"]["content"]))
            elif item["key"] != "header":
                return self._error(400, "BadRequest", f"unsupported commit entry {item['key']}", False)
        commit = hub.add_commit(repo_id, folder, branch=rev, repo_type=repo_type)
        return self._json(
            200,
            {
                "commitUrl": f"{hub.url}/{repo_type}s/{repo_id}/commit/{commit}",
                "commitOid": commit,
                "pullRequestUrl": None,
            },
        )

    # ------------------------------------------------------------------------------------------
    def _send(self, status: int, headers: dict[str, str], body: bytes = b"", head: bool = False) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if not head and body:
            self.wfile.write(body)
        self.close_connection = True

    def _error(self, status: int, code: str, message: str, head: bool, extra: dict[str, str] | None = None) -> None:
        body = json.dumps({"error": message}).encode()
        self._send(
            status,
            {"X-Error-Code": code, "X-Error-Message": message, "Content-Type": "application/json", **(extra or {})},
            body,
            head,
        )

    def _resolve(self, head: bool) -> None:
        hub = self.hub
        raw = urlsplit(self.path).path
        rng = self.headers.get("Range")
        with hub._lock:
            hub.requests.append(("HEAD" if head else "GET", unquote(raw), rng))
        parts = raw.split("/")[1:]
        repo_type = "model"
        if parts and parts[0] in ("datasets", "spaces"):
            repo_type = parts[0][:-1]
            parts = parts[1:]
        if len(parts) < 5 or parts[2] != "resolve":
            return self._error(404, "RepoNotFound", "not a resolve route", head)
        repo_id = f"{unquote(parts[0])}/{unquote(parts[1])}"
        revision = unquote(parts[3])
        path = "/".join(unquote(p) for p in parts[4:])
        repo = hub.repos.get((repo_type, repo_id))
        if repo is None:
            return self._error(404, "RepoNotFound", f"Repository {repo_id} not found", head)
        commit = revision if revision in repo.commits else repo.refs.get(revision)
        if commit is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", head)
        folder = repo.commits[commit]
        file = (folder / path).resolve()
        if ".." in path.split("/") or not file.is_file() or folder.resolve() not in file.parents:
            return self._error(
                404, "EntryNotFound", f"{path} does not exist at {commit}", head, {"X-Repo-Commit": commit}
            )
        data = file.read_bytes()
        headers = {"X-Repo-Commit": commit, "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        if path.endswith(LFS_SUFFIXES):
            sha = hashlib.sha256(data).hexdigest()
            headers.update({"ETag": f'"{sha}"', "X-Linked-Etag": f'"{sha}"', "X-Linked-Size": str(len(data))})
        else:
            headers["ETag"] = f'"{git_blob_sha1(data)}"'
        if path in hub._corrupt and data:
            mid = len(data) // 2
            data = data[:mid] + bytes([data[mid] ^ 0xFF]) + data[mid + 1 :]
        status, start = 200, 0
        m = _RANGE_RE.match(rng or "")
        if m and not head:
            start = int(m.group(1))
            end = int(m.group(2)) if m.group(2) else len(data) - 1
            if start >= len(data):
                return self._send(416, {"Content-Range": f"bytes */{len(data)}"}, b"", head)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            data = data[start : end + 1]
            status = 206
        headers["Content-Length"] = str(len(data))
        if head:
            return self._send(status, headers, b"", head=True)
        with hub._lock:
            cut = hub._drop.pop(path, None)
        if cut is not None and cut < len(data):
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data[:cut])
            self.wfile.flush()
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.close_connection = True
            return
        self._send(status, headers, data)
