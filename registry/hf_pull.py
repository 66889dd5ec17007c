"""Pulling a model from the Hugging Face Hub, reported the way Ollama reports a pull.

Runs on a worker thread (it blocks on the network); `emit` receives Ollama's progress objects in order:
`pulling manifest`, `pulling <12 hex>` per file (digest, total, completed: throttled, never decreasing),
`verifying sha256 digest`, `writing manifest`, `success`.

Why not `hf_hub_download`: since huggingface_hub 2.x it downloads into a process-unique temporary file and
deletes it on any failure, so a pull that is interrupted (client gone, connection cut, server stopped)
would start again from zero. Here each file goes to `blobs/<etag>.incomplete`, which the next pull
continues with a Range request, through huggingface_hub's own HEAD and GET (`get_hf_file_metadata`,
`http_get`: auth, redirects, retries), and enters the cache only after its hash matched: sha256 for LFS
files (the hub's X-Linked-Etag / LFS oid), the git blob sha1 the hub lists for the others. A file that does
not match is thrown away and nothing is registered. The manifest is written last, so a model is listed
only once every file is in place.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry import hf_cache
from registry.catalog import Catalog, Resolved
from registry.create import valid_relative_path
from registry.model_dir import architecture_refusal
from registry.names import ModelName
from registry.store import Store, StoredModel
from shim.config import hub_timeout, pull_chunk_bytes

Emit = Callable[[dict[str, Any]], None]

# What mlx-lm's loader fetches (mlx_lm.utils._download): weights, configs, tokenizer and chat template files.
ALLOW_PATTERNS = (
    "*.json",
    "model*.safetensors",
    "*.py",
    "tokenizer.model",
    "*.tiktoken",
    "*.txt",
    "*.jsonl",
    "*.jinja",
)
# What the hub says becomes paths in the cache: a commit or an etag that is not one plain name could
# point outside it.
_COMMIT = re.compile(r"[0-9a-f]{40}\Z")
_ETAG = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*\Z")
PROGRESS_INTERVAL_S = 0.06  # Ollama reports a layer's progress about every 60 ms


def _chunk_bytes() -> int:
    """huggingface_hub reads 10 MiB before it writes or reports anything; 1 MiB chunks make progress finer,
    a cancel quicker and a resume lose less. MLX_SHIM_PULL_CHUNK_BYTES changes it."""
    return pull_chunk_bytes()


class PullError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PullCancelled(Exception):
    """The client went away: stop downloading (the .incomplete file stays for the next pull)."""


@dataclass
class RemoteFile:
    path: str
    size: int
    sha256: str | None  # LFS files: the content's sha256 (the LFS oid), known before download
    git_oid: str | None  # other files: the git blob sha1 the hub lists for them
    etag: str = ""  # the blob's name in the cache
    location: str = ""
    fetched: bool = False  # this pull downloaded it (so it must be verified)
    digest: str = ""  # sha256:<hex> as reported (for small files computed from the bytes)


def pull(store: Store, catalog: Catalog, name: ModelName, emit: Emit, cancelled: threading.Event) -> StoredModel:
    emit({"status": "pulling manifest"})
    resolved = catalog.resolve(name)
    if resolved is None:
        raise PullError("pull model manifest: file does not exist")
    commit, files = _remote_manifest(resolved)
    previous = _fetched_before(store, resolved.repo, commit)
    config = next(f for f in files if f.path == "config.json")
    _fetch(resolved.repo, commit, config, emit, cancelled)
    _refuse_unsupported(resolved.repo, commit, config)  # before a byte of the weights is asked for
    for file in sorted(files, key=lambda f: f.sha256 is not None):  # small files first, then the weights
        if file is not config:
            _fetch(resolved.repo, commit, file, emit, cancelled)
    emit({"status": "verifying sha256 digest"})
    mismatches = [error for file in files if file.fetched and (error := _verify_and_place(resolved.repo, commit, file))]
    if mismatches:
        raise PullError(mismatches[0])
    hf_cache.write_ref(resolved.repo, resolved.revision, commit)
    emit({"status": "writing manifest"})
    fetched = sorted(previous | {f.path for f in files if f.fetched})
    source: dict[str, Any] = {
        "type": "hf",
        "repo": resolved.repo,
        "revision": commit,
        "files": [{"path": f.path, "size": f.size, "digest": f.digest} for f in sorted(files, key=lambda f: f.path)],
        "downloaded": fetched,
    }
    with store.changing:
        existing = store.get(name)
        keep = {
            k: v
            for k, v in (existing.manifest if existing else {}).items()
            if k in ("system", "template", "parameters")
        }
        stored = store.put(name, {"source": source, **keep})
    emit({"status": "success"})
    return stored


def _remote_manifest(resolved: Resolved) -> tuple[str, list[RemoteFile]]:
    from huggingface_hub import HfApi

    try:
        info = HfApi().model_info(resolved.repo, revision=resolved.revision, files_metadata=True, timeout=hub_timeout())
    except Exception as e:
        raise PullError(f"pull model manifest: {_describe(e)}") from None
    files = [
        RemoteFile(s.rfilename, int(s.size or 0), s.lfs.sha256 if s.lfs else None, None if s.lfs else s.blob_id)
        for s in info.siblings or []
        if any(fnmatch.fnmatch(s.rfilename, p) for p in ALLOW_PATTERNS)
    ]
    unsafe = next((f.path for f in files if not valid_relative_path(f.path)), None)
    if unsafe is not None:  # `../../x.json` would be written outside the cache
        raise PullError(f"pull model manifest: invalid file name {unsafe!r} in {resolved.repo}")
    names = {f.path for f in files}
    if "config.json" not in names or not any(n.endswith(".safetensors") for n in names):
        raise PullError(
            f"pull model manifest: {resolved.repo} has no config.json and .safetensors weights (not an MLX model)"
        )
    if not info.sha or not _COMMIT.match(info.sha):
        raise PullError("pull model manifest: the hub did not say which commit it serves")
    return info.sha, files


def _refuse_unsupported(repo: str, commit: str, config: RemoteFile) -> None:
    """A model the installed mlx-lm has no class for fails here, with what to upgrade, not on its first request
    after gigabytes of weights. The config is read where _fetch left it (verified with the rest later)."""
    if config.fetched:
        path = hf_cache.repo_dir(repo) / "blobs" / f"{config.etag}.incomplete"
    else:
        path = hf_cache.snapshot_dir(repo, commit) / config.path
    try:
        parsed = json.loads(path.read_bytes())
    except (OSError, ValueError):
        parsed = None
    if not isinstance(parsed, dict):
        raise PullError(f"pull model manifest: the config.json of {repo} is not a JSON object")
    refusal = architecture_refusal(parsed)
    if refusal is not None:
        raise PullError(refusal)


def _describe(e: Exception) -> str:
    """Ollama's texts for what went wrong at the registry, from huggingface_hub's and httpx's errors."""
    response = getattr(e, "response", None)
    status = getattr(response, "status_code", None)
    if status in (401, 403):
        return "unauthorized: access denied (a private or gated repository needs HF_TOKEN)"
    if status == 404:
        return "file does not exist"
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    if status is not None:
        return f"{status}: {text}"
    try:  # a network failure: say what was asked, like Go's `Get "<url>": dial tcp ...`
        request = e.request  # type: ignore[attr-defined]
        return f'{request.method.capitalize()} "{request.url}": {text}'
    except (AttributeError, RuntimeError):
        return text


def _fetched_before(store: Store, repo: str, commit: str) -> set[str]:
    """Files mlx-shim downloaded for this repo+revision under other names: still ours to delete later."""
    out: set[str] = set()
    for other in store.list():
        src = other.manifest.get("source", {})
        if src.get("type") == "hf" and (src.get("repo"), src.get("revision")) == (repo, commit):
            out.update(src.get("downloaded", []))
    return out


def _fetch(repo: str, commit: str, file: RemoteFile, emit: Emit, cancelled: threading.Event) -> None:
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    if cancelled.is_set():
        raise PullCancelled
    pointer = hf_cache.snapshot_dir(repo, commit) / file.path
    if pointer.is_file() and pointer.stat().st_size == file.size:  # already in the cache
        file.digest = f"sha256:{file.sha256 or _sha256(pointer)}"
        file.etag = Path(pointer.resolve()).name
        emit(_progress(file.digest, file.size, file.size))
        return
    url = hf_hub_url(repo, file.path, revision=commit)
    try:
        meta = get_hf_file_metadata(url, retry_on_errors=True, timeout=hub_timeout())
    except Exception as e:
        raise PullError(f"pull model manifest: {_describe(e)}") from None
    if not meta.etag or not _ETAG.match(meta.etag):
        raise PullError(f"pull model manifest: no valid ETag for {file.path}")
    file.etag, file.location, file.fetched = meta.etag, meta.location, True
    if meta.size is not None:
        file.size = meta.size
    blobs = hf_cache.repo_dir(repo) / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    partial = blobs / f"{file.etag}.incomplete"
    digest = f"sha256:{file.sha256}" if file.sha256 else ""
    reporter = _Reporter(digest, file.size, emit, cancelled)
    with _file_lock(repo, file.etag):
        blob = blobs / file.etag
        if blob.is_file() and blob.stat().st_size == file.size:
            partial.unlink(missing_ok=True)
            file.fetched = False  # another download finished it meanwhile
            hf_cache.link_blob(repo, commit, file.path, file.etag)
        else:
            _download(meta.location, partial, file, reporter)
        file.digest = digest or f"sha256:{_sha256(partial if file.fetched else blob)}"
    reporter.digest = file.digest
    reporter.finish()


def _download(url: str, partial: Path, file: RemoteFile, reporter: _Reporter) -> None:
    """Append to the partial file from where it ends (a Range request), through huggingface_hub's http_get."""
    from huggingface_hub import constants
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import build_hf_headers

    with partial.open("ab") as f:
        resume = f.tell()
        if resume > file.size:
            f.truncate(0)
            resume = 0
        constants.DOWNLOAD_CHUNK_SIZE = _chunk_bytes()
        constants.HF_HUB_DOWNLOAD_TIMEOUT = int(hub_timeout()) or 1  # huggingface_hub's own default is 10 s
        try:
            http_get(
                url,
                f,
                resume_size=resume,
                headers=build_hf_headers(),
                expected_size=file.size,
                tqdm_class=functools.partial(_Bar, reporter),  # type: ignore[arg-type]
            )
        except PullCancelled:
            raise
        except Exception as e:
            raise PullError(f"download {file.path}: {_describe(e)}") from None


def _verify_and_place(repo: str, commit: str, file: RemoteFile) -> str | None:
    """The bytes must hash to what the hub promised before they get the blob's name; a file that does not
    is deleted (the next pull fetches it again) and its error returned: the pull then fails before any
    manifest is written. Files that match are placed either way, so a retry fetches only the bad one."""
    blobs = hf_cache.repo_dir(repo) / "blobs"
    partial = blobs / f"{file.etag}.incomplete"
    with _file_lock(repo, file.etag):
        if partial.exists():  # else a pull running beside this one verified and placed it first
            if file.sha256:
                want, got = file.sha256, _sha256(partial)
            else:
                want = file.git_oid or ""
                got = _git_blob_sha1(partial) if want else ""  # a hub that lists no blob id leaves nothing to check
            if got != want:
                partial.unlink()
                kind = "sha256" if file.sha256 else "git-sha1"
                return f"digest mismatch, file must be downloaded again: want {kind}:{want}, got {kind}:{got}"
            partial.replace(blobs / file.etag)
        hf_cache.link_blob(repo, commit, file.path, file.etag)
    return None


@contextlib.contextmanager
def _file_lock(repo: str, etag: str) -> Iterator[None]:
    """huggingface_hub's own lock file for this blob, so its downloads and ours never write one file twice."""
    from huggingface_hub.utils import WeakFileLock

    locks = hf_cache.hub_cache() / ".locks" / hf_cache.repo_dir(repo).name
    locks.mkdir(parents=True, exist_ok=True)
    with WeakFileLock(locks / f"{etag}.lock"):
        yield


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _git_blob_sha1(path: Path) -> str:
    h = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _progress(digest: str, total: int, completed: int) -> dict[str, Any]:
    out: dict[str, Any] = {"status": f"pulling {digest[7:19]}", "digest": digest, "total": total}
    if completed:
        out["completed"] = completed
    return out


class _Reporter:
    """Throttles one file's progress to a line every PROGRESS_INTERVAL_S, `completed` never going back
    (huggingface_hub rewinds its counter when a server ignores a Range request)."""

    def __init__(self, digest: str, total: int, emit: Emit, cancelled: threading.Event) -> None:
        self.digest, self.total, self.emit, self.cancelled = digest, total, emit, cancelled
        self.completed = 0
        self.last = 0.0

    def update(self, completed: int) -> None:
        if self.cancelled.is_set():
            raise PullCancelled
        self.completed = max(self.completed, min(completed, self.total))
        now = time.monotonic()
        if self.digest and now - self.last >= PROGRESS_INTERVAL_S:
            self.last = now
            self.emit(_progress(self.digest, self.total, self.completed))

    def finish(self) -> None:
        self.emit(_progress(self.digest, self.total, self.total))


class _Bar:
    """The part of tqdm's interface huggingface_hub's http_get uses, feeding a _Reporter."""

    def __init__(self, reporter: _Reporter, *, initial: int = 0, **_: Any) -> None:
        self.reporter = reporter
        self.n = initial
        reporter.update(initial)

    def __enter__(self) -> _Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int = 1) -> None:
        self.n += n
        self.reporter.update(self.n)

    def close(self) -> None:
        return None
