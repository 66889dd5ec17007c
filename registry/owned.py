"""Model directories mlx-shim makes itself (`MLX_SHIM_HOME/models/<id>`): from uploaded files, from a GGUF,
or by quantizing another model.

The id names what the directory was made from, so the same source gives the same directory, shared by every
name that uses it (a GGUF imported twice, or created and imported, is converted once). A directory is built
in a staging folder beside it (`.assemble-*`, which the startup prune removes if a crash leaves one) and
renamed into place only once it is complete and loadable: a directory under models/ is never half-written.
Building can take minutes (a conversion), so it never holds the store's lock; a lock per id keeps two builds
of the same directory from racing.
"""

from __future__ import annotations

import hashlib
import os
import queue
import shutil
import tempfile
import threading
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any, TypeVar

from shim.mlx_threads import release_mlx_streams

T = TypeVar("T")

STAGING_PREFIX = ".assemble-"

_locks_guard = threading.Lock()
_locks: dict[str, threading.Lock] = {}


def model_id(*parts: str) -> str:
    """A 64-hex id (the form the startup prune recognises as ours) for what a directory is made from."""
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def gguf_model_id(digest: str, quantize: str | None) -> str:
    """The directory a GGUF converts into: its blob digest and the requested quantization."""
    return model_id("gguf", digest, quantize or "")


def file_digest(path: Path) -> str:
    """`sha256:<hex>` of a file, read in chunks (a GGUF is gigabytes): call it on a worker thread."""
    with path.open("rb") as f:
        return "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()


def directory_fingerprint(directory: Path) -> str:
    """What identifies a model directory's content cheaply: each file's path, size and mtime."""
    entries = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        stat = path.stat()
        entries.append(f"{path.relative_to(directory).as_posix()}:{stat.st_size}:{stat.st_mtime_ns}")
    return model_id(str(directory.resolve()), *entries)


def _lock(key: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


def build_owned(
    models_dir: Path, directory_id: str, build: Callable[[Path], None], check: Callable[[Path], object]
) -> tuple[Path, bool]:
    """`models_dir/<directory_id>`, built by `build(path)` (into a path that does not exist yet) unless it is
    already there, then checked by `check` before it appears. Returns the directory and whether it was built
    now. Whatever `build` or `check` raise propagates, and nothing of the attempt stays."""
    target = models_dir / directory_id
    with _lock(directory_id):
        if target.is_dir():
            return target, False
        models_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=models_dir, prefix=STAGING_PREFIX))
        try:
            built = staging / "model"
            build(built)
            check(built)
            try:
                os.rename(built, target)  # atomic: a directory under models/ is always complete
            except OSError:
                if not target.is_dir():
                    raise
                # another process (a local create beside the server) finished the same directory first
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target, True


_DONE = object()


def with_progress(work: Callable[[Callable[[str], None]], T]) -> Generator[str, None, T]:
    """Run `work(progress)` on its own thread and yield each status it reports as it happens, so a generator
    of statuses (a create) streams a conversion's progress live; return its result or raise its error."""
    statuses: queue.Queue[Any] = queue.Queue()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = work(statuses.put)
        except BaseException as e:  # handed to the caller's thread, raised there
            outcome["error"] = e
        finally:
            release_mlx_streams()  # a conversion runs MLX: its thread must not end holding streams
            statuses.put(_DONE)

    thread = threading.Thread(target=run, name="conversion", daemon=True)
    thread.start()
    while (status := statuses.get()) is not _DONE:
        yield status
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]
