"""A minimal local Hugging Face Hub for publish tests (127.0.0.1 only, port 0, in-memory).

Just enough of the Hub HTTP API for huggingface_hub 2.4.0's ``HfApi.create_repo`` + ``upload_folder``
(both the hf_xet pipelined path and the legacy single-commit path) and ``whoami``:

- ``POST /api/repos/create``  JSON ``{name, organization, type, visibility}`` → ``{"url": ...}``; 409 if it
  exists (huggingface_hub's ``exist_ok=True`` accepts that).
- ``GET  /api/{type}s/{owner}/{name}[/revision/{rev}]``  repo info ``{id, sha, private}`` or 404 RepoNotFound.
- ``POST /api/validate-yaml``  → ``{"errors": [], "warnings": []}`` (upload_folder checks README.md first).
- ``POST /api/{type}s/{owner}/{name}/preupload/{rev}`` → every file ``"uploadMode": "regular"`` (so contents
  travel base64 inside the commit: no LFS, no Xet storage), ``"oid"`` = git blob sha1 of the stored file (if
  any) so unchanged files are skipped on a re-run, as on the Hub.
- ``POST /api/{type}s/{owner}/{name}/commit/{rev}``  NDJSON (header, file, deletedFile; lfsFile → 400).
- ``GET  /api/whoami-v2``.

Usage::

    with HubServer(require_token="hf_test") as hub:
        publish(folder, "me/ds", endpoint=hub.url, token="hf_test")
        hub.repos["me/ds"]            # {"type": "dataset", "private": True, "visibility": "private"}
        hub.files["me/ds"]            # {path_in_repo: bytes} committed so far
        hub.requests                  # every request: {"method", "path", "query", "headers" (lower-case keys),
                                  #                 "body" (bytes), "route"}
        hub.commits                   # [{"repo_id", "revision", "header", "paths"}]

Switches (attributes, change them any time): ``require_token`` (other/missing bearer → 401), ``fail_status``
+ ``fail_message`` + ``fail_routes`` (answer that status on those route names, all routes when None:
"create", "repo_info", "validate_yaml", "preupload", "commit", "whoami"), ``owners`` (a set: creating a repo
for any other owner → 404). Handler threads are daemons; the server stops when the ``with`` block ends.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from local_server import LocalServer, QuietHandler

_REPO = r"(?P<type>models|datasets|spaces)/(?P<owner>[^/]+)/(?P<name>[^/]+)"
_ROUTES = [
    ("POST", "create", re.compile(r"^/api/repos/create$")),
    ("POST", "validate_yaml", re.compile(r"^/api/validate-yaml$")),
    ("GET", "whoami", re.compile(r"^/api/whoami-v2$")),
    ("POST", "preupload", re.compile(rf"^/api/{_REPO}/preupload/(?P<rev>[^/]+)$")),
    ("POST", "commit", re.compile(rf"^/api/{_REPO}/commit/(?P<rev>[^/]+)$")),
    ("GET", "repo_info", re.compile(rf"^/api/{_REPO}(?:/revision/(?P<rev>[^/]+))?$")),
]


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob, which the Hub reports as a regular file's ``oid``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class _Handler(QuietHandler):
    # HTTP/1.0: one request per connection, so no pooled keep-alive connection outlives a test's server.

    def _body(self) -> bytes:
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        hub = self.server.owner
        body = self._body()
        split = urlsplit(self.path)
        path = unquote(split.path)
        route, match = "unknown", None
        for method, name, pattern in _ROUTES:
            m = pattern.match(path)
            if m and method == self.command:
                route, match = name, m
                break
        hub._record({"method": self.command, "path": path, "query": parse_qs(split.query),
                     "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body, "route": route})
        status, payload, headers = hub._answer(route, match, body, self.headers)
        self._send(status, json.dumps(payload).encode("utf-8"), "application/json", headers)

    do_GET = do_POST = do_PUT = do_DELETE = _handle


class HubServer(LocalServer):
    """The in-memory Hub on 127.0.0.1; ``url`` is the endpoint to give huggingface_hub (no trailing slash)."""

    handler_class = _Handler
    thread_name = "hub-server"

    def __init__(self, require_token: str | None = None, owners: set[str] | None = None,
                 max_lifetime: float = 60.0) -> None:
        self.require_token = require_token
        self.owners = owners
        self.fail_status: int | None = None
        self.fail_message = "simulated failure"
        self.fail_routes: set[str] | None = None
        super().__init__(max_lifetime)
        self.requests: list[dict] = []
        self.repos: dict[str, dict] = {}
        self.files: dict[str, dict[str, bytes]] = {}
        self.commits: list[dict] = []
        self._lock = threading.Lock()

    # -- switches
    def fail(self, status: int, message: str = "simulated failure", routes: set[str] | None = None) -> None:
        """Answer ``status`` (JSON ``{"error": message}``) on ``routes`` (all when None) from now on."""
        self.fail_status, self.fail_message, self.fail_routes = status, message, routes

    # -- bookkeeping
    def _record(self, entry: dict) -> None:
        with self._lock:
            self.requests.append(entry)

    def routes(self) -> list[str]:
        """Route names of the requests received, in order."""
        with self._lock:
            return [r["route"] for r in self.requests]

    # -- the API
    def _answer(self, route: str, m: re.Match | None, body: bytes, headers: Any) -> tuple[int, Any, dict]:
        if self.require_token is not None and headers.get("Authorization") != f"Bearer {self.require_token}":
            msg = "Invalid credentials in Authorization header"
            return 401, {"error": msg}, {"X-Error-Message": msg}
        if self.fail_status is not None and (self.fail_routes is None or route in self.fail_routes):
            return self.fail_status, {"error": self.fail_message}, {}
        if m is None:
            return 404, {"error": f"no route {route}"}, {}
        try:
            with self._lock:
                return getattr(self, f"_{route}")(m, body)
        except (ValueError, KeyError, TypeError) as exc:
            return 400, {"error": f"bad request: {type(exc).__name__}: {exc}"}, {}

    def _repo_id(self, m: re.Match) -> str:
        return f"{m['owner']}/{m['name']}"

    def _missing(self, repo_id: str) -> tuple[int, Any, dict]:
        return 404, {"error": f"Repository not found: {repo_id}"}, {"X-Error-Code": "RepoNotFound"}

    def _create(self, m: re.Match, body: bytes) -> tuple[int, Any, dict]:
        req = json.loads(body)
        owner, name = req.get("organization"), req["name"]
        if not owner:
            owner = "test-user"
        if self.owners is not None and owner not in self.owners:
            return 404, {"error": f"Organization or user {owner} not found"}, {}
        repo_id = f"{owner}/{name}"
        repo_type = req.get("type") or "model"
        if repo_id in self.repos:
            return 409, {"error": "You already created this repo", "url": self._url(repo_type, repo_id)}, {}
        visibility = req.get("visibility")
        self.repos[repo_id] = {"type": repo_type, "private": visibility == "private", "visibility": visibility}
        self.files[repo_id] = {}
        return 200, {"url": self._url(repo_type, repo_id), "name": repo_id, "id": repo_id}, {}

    def _url(self, repo_type: str, repo_id: str) -> str:
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        return f"{self.url}/{prefix}{repo_id}"

    def _repo_info(self, m: re.Match, body: bytes) -> tuple[int, Any, dict]:
        repo_id = self._repo_id(m)
        repo = self.repos.get(repo_id)
        if repo is None or f"{repo['type']}s" != m["type"]:
            return self._missing(repo_id)
        sha = self.commits[-1]["oid"] if any(c["repo_id"] == repo_id for c in self.commits) else "0" * 40
        return 200, {"id": repo_id, "sha": sha, "private": repo["private"], "siblings": [
            {"rfilename": p} for p in sorted(self.files[repo_id])]}, {}

    def _validate_yaml(self, m: re.Match, body: bytes) -> tuple[int, Any, dict]:
        json.loads(body)
        return 200, {"errors": [], "warnings": []}, {}

    def _whoami(self, m: re.Match, body: bytes) -> tuple[int, Any, dict]:
        return 200, {"type": "user", "name": "test-user", "orgs": [], "auth": {"type": "access_token"}}, {}

    def _preupload(self, m: re.Match, body: bytes) -> tuple[int, Any, dict]:
        repo_id = self._repo_id(m)
        if repo_id not in self.repos:
            return self._missing(repo_id)
        stored = self.files[repo_id]
        files = []
        for f in json.loads(body)["files"]:
            base64.b64decode(f["sample"], validate=True)
            old = stored.get(f["path"])
            files.append({"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                          "oid": git_blob_sha1(old) if old is not None else None})
        return 200, {"files": files}, {}

    def _commit(self, m: re.Match, body: bytes) -> tuple[int, Any, dict]:
        repo_id = self._repo_id(m)
        if repo_id not in self.repos:
            return self._missing(repo_id)
        header, adds, deletes = None, {}, []
        for line in body.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                header = value
            elif key == "file":
                if value.get("encoding") != "base64":
                    raise ValueError(f"unsupported encoding {value.get('encoding')!r}")
                adds[value["path"]] = base64.b64decode(value["content"], validate=True)
            elif key in ("deletedFile", "deletedFolder"):
                deletes.append(value["path"])
            else:
                return 400, {"error": f"test hub does not support {key!r} operations"}, {}
        if header is None:
            raise ValueError("commit payload without a header line")
        oid = hashlib.sha1(f"{len(self.commits)}:{repo_id}".encode()).hexdigest()
        for path in deletes:
            self.files[repo_id].pop(path, None)
        self.files[repo_id].update(adds)
        self.commits.append({"repo_id": repo_id, "revision": m["rev"], "header": header,
                             "paths": sorted(adds), "deleted": deletes, "oid": oid})
        url = f"{self._url(self.repos[repo_id]['type'], repo_id)}/commit/{oid}"
        return 200, {"commitUrl": url, "commitOid": oid, "pullRequestUrl": None}, {}

    # -- lifecycle
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"
