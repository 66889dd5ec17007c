"""A stand-in for the Hugging Face Hub on loopback, serving one directory as every repository whose name
starts with `prefix` (`mlx-community/tiny-...`), so each test can pull a repository no other test touched.

It answers what huggingface_hub (2.x, read from its source) asks during a pull:

* `GET /api/models/<repo>/revision/<rev>?blobs=true`: the commit sha and the files, with size, blobId, and
  lfs {sha256, size} for LFS files (here: *.safetensors), as `HfApi.model_info(files_metadata=True)` reads.
* `HEAD /<repo>/resolve/<rev>/<file>` (`get_hf_file_metadata`): X-Repo-Commit, ETag (git blob sha1) and,
  for LFS files, a 302 to the "CDN" (`/cdn/<sha256>`) with X-Linked-Etag and X-Linked-Size, as the hub does.
* `GET` of either URL, honouring `Range: bytes=N-` with 206 and Content-Range.
* Errors the way the hub sends them: 401 / 404 with X-Error-Code (RepoNotFound, RevisionNotFound); a
  repository outside the prefix gets the hub's 401 RepoNotFound.

Faults for tests: answer a status for everything (`status`), cut the connection after N bytes of a file for
the next K downloads (`cut_after`, `cut_times`), answer 503 to downloads after a cut (`fail_after_cut`),
serve wrong bytes with the right headers (`corrupt`), send LFS files slowly (`delay_per_chunk`), or close the
connection without answering (`hang_up`, a network failure). `requests` records (method, path, Range
header) of every request. `replaced` gives one repository other bytes for some of its files (another
config.json, say), the rest served as for every repository.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class RepoFile:
    name: str
    data: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def git_sha1(self) -> str:
        return hashlib.sha1(f"blob {len(self.data)}\0".encode() + self.data).hexdigest()


@dataclass
class Faults:
    status: int | None = None  # every request answers this (401, 404, ...)
    cut_after: int | None = None  # bytes of an LFS file sent before the connection is cut
    cut_times: int = 0
    fail_after_cut: bool = False  # downloads answer 503 once a cut happened (so the pull fails, not retries)
    corrupt: bool = False  # LFS downloads send other bytes of the same length
    hang_up: bool = False
    silent: float = 0.0  # seconds every request waits before it is answered: a hub that accepts and says nothing
    delay_per_chunk: float = 0.0
    chunk: int = 16384
    cuts_done: int = 0


@dataclass
class StandinHub:
    prefix: str
    files: dict[str, RepoFile]
    faults: Faults = field(default_factory=Faults)
    requests: list[tuple[str, str, str]] = field(default_factory=list)
    replaced: dict[str, dict[str, bytes]] = field(default_factory=dict)  # repo -> file name -> its bytes there
    server: ThreadingHTTPServer | None = None

    @classmethod
    def serving(cls, prefix: str, directory: Path) -> StandinHub:
        files = {
            p.name: RepoFile(p.name, p.read_bytes(), p.suffix == ".safetensors")
            for p in sorted(directory.iterdir())
            if p.is_file()
        }
        return cls(prefix, files)

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> StandinHub:
        hub = self

        class Handler(_Handler):
            pass

        Handler.hub = hub
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def files_of(self, repo: str) -> dict[str, RepoFile]:
        replaced = self.replaced.get(repo, {})
        return {n: RepoFile(n, replaced[n], f.lfs) if n in replaced else f for n, f in self.files.items()}

    def downloads(self, name: str) -> list[str]:
        """The Range header (or '') of each GET that fetched file `name`'s bytes."""
        file = self.files[name]
        return [
            rng
            for method, path, rng in self.requests
            if method == "GET" and (path == f"/cdn/{file.sha256}" or path.endswith(f"/resolve/{COMMIT}/{name}"))
        ]


class _Handler(BaseHTTPRequestHandler):
    hub: StandinHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_HEAD(self) -> None:
        self._route(head=True)

    def do_GET(self) -> None:
        try:
            self._route(head=False)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client hung up mid-file: what a disconnect test wants

    def _route(self, head: bool) -> None:
        hub = self.hub
        path = unquote(urlsplit(self.path).path)
        hub.requests.append((self.command, path, self.headers.get("Range", "")))
        if hub.faults.silent:
            time.sleep(hub.faults.silent)
        if hub.faults.hang_up:
            self.close_connection = True
            self.connection.shutdown(2)
            return None
        if hub.faults.status is not None:
            return self._error(hub.faults.status, "RepoNotFound")
        parts = path.split("/")
        if path.startswith("/api/models/") and len(parts) == 7 and parts[5] == "revision":
            repo = f"{parts[3]}/{parts[4]}"
            if not repo.startswith(hub.prefix):
                return self._error(401, "RepoNotFound")
            if parts[6] not in ("main", COMMIT):
                return self._error(404, "RevisionNotFound")
            return self._json(self._model_info(repo))
        if len(parts) >= 6 and parts[3] == "resolve":
            if not f"{parts[1]}/{parts[2]}".startswith(hub.prefix):
                return self._error(401, "RepoNotFound")
            revision, name = parts[4], "/".join(parts[5:])
            file = hub.files_of(f"{parts[1]}/{parts[2]}").get(name)
            if revision not in ("main", COMMIT):
                return self._error(404, "RevisionNotFound")
            if file is None:
                return self._error(404, "EntryNotFound")
            if file.lfs:
                return self._redirect(file)
            return self._content(file, head)
        if path.startswith("/cdn/"):
            everything = [*hub.files.values(), *(f for repo in hub.replaced for f in hub.files_of(repo).values())]
            file = next((f for f in everything if f.sha256 == path[5:]), None)
            if file is None:
                return self._error(404, "EntryNotFound")
            return self._content(file, head)
        return self._error(404, "")

    def _model_info(self, repo: str) -> dict[str, Any]:
        siblings = []
        for f in self.hub.files_of(repo).values():
            sibling: dict[str, Any] = {"rfilename": f.name, "size": len(f.data), "blobId": f.git_sha1}
            if f.lfs:
                sibling["lfs"] = {"sha256": f.sha256, "size": len(f.data), "pointerSize": 134}
            siblings.append(sibling)
        return {"_id": "x", "id": repo, "modelId": repo, "sha": COMMIT, "siblings": siblings}

    def _redirect(self, file: RepoFile) -> None:
        self.send_response(302)
        self.send_header("Location", f"{self.hub.url}/cdn/{file.sha256}")
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", f'"{file.git_sha1}"')
        self.send_header("X-Linked-Etag", f'"{file.sha256}"')
        self.send_header("X-Linked-Size", str(len(file.data)))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _content(self, file: RepoFile, head: bool) -> None:
        faults = self.hub.faults
        if not head and file.lfs and faults.fail_after_cut and faults.cuts_done:
            return self._error(503, "")
        data = bytes(b ^ 0xFF for b in file.data) if (file.lfs and faults.corrupt) else file.data
        start = 0
        rng = self.headers.get("Range", "")
        if rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
        self.send_response(206 if start else 200)
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", f'"{file.sha256 if file.lfs else file.git_sha1}"')
        self.send_header("Content-Length", str(len(data) - start))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if head:
            return
        body = data[start:]
        cut = file.lfs and faults.cut_after is not None and faults.cuts_done < faults.cut_times
        sent = 0
        while sent < len(body):
            if cut and start + sent >= faults.cut_after:  # type: ignore[operator]
                faults.cuts_done += 1
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            piece = body[sent : sent + faults.chunk]
            if cut:
                piece = piece[: faults.cut_after - start - sent]  # type: ignore[operator]
            self.wfile.write(piece)
            self.wfile.flush()
            sent += len(piece)
            if faults.delay_per_chunk and file.lfs:
                time.sleep(faults.delay_per_chunk)

    def _json(self, obj: Any) -> None:
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, code: str) -> None:
        body = json.dumps({"error": f"stand-in hub: {status} {code}"}).encode()
        self.send_response(status)
        if code:
            self.send_header("X-Error-Code", code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
