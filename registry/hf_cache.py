"""Where pulled weights live: the Hugging Face cache, in its own layout, so that mlx-lm, `hf` and every
other tool see (and share) the same files.

    <cache>/models--<org>--<name>/blobs/<etag>              the bytes (etag: sha256 for LFS, git sha1 otherwise)
    <cache>/models--<org>--<name>/snapshots/<commit>/<file>  relative symlink to ../../blobs/<etag>
    <cache>/models--<org>--<name>/refs/<branch>              the commit the branch pointed at

The cache directory follows huggingface_hub's rules (HF_HUB_CACHE, else HF_HOME/hub, else
XDG_CACHE_HOME/huggingface/hub), read at call time so a server and its tests agree on one place.
"""

from __future__ import annotations

import os
from pathlib import Path

from registry import atomic
from shim.config import hf_hub_cache as hub_cache  # where the cache is: read in shim/config.py


def repo_dir(repo: str) -> Path:
    return hub_cache() / ("models--" + repo.replace("/", "--"))


def snapshot_dir(repo: str, commit: str) -> Path:
    return repo_dir(repo) / "snapshots" / commit


def link_blob(repo: str, commit: str, filename: str, etag: str) -> Path:
    """Point snapshots/<commit>/<filename> at blobs/<etag> (relative, as huggingface_hub links them)."""
    pointer = snapshot_dir(repo, commit) / filename
    pointer.parent.mkdir(parents=True, exist_ok=True)
    target = os.path.relpath(repo_dir(repo) / "blobs" / etag, pointer.parent)
    if pointer.is_symlink() and os.readlink(pointer) == target:
        return pointer
    atomic.symlink(target, pointer)  # the name points at the old blob or the new one, never nowhere
    return pointer


def write_ref(repo: str, revision: str, commit: str) -> None:
    if revision == commit:
        return
    ref = repo_dir(repo) / "refs" / revision
    ref.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_bytes(ref, commit.encode())


def remove_files(repo: str, commit: str, filenames: list[str]) -> None:
    """Delete these files of one snapshot and the blobs behind them, unless another snapshot of the repo
    still links a blob; then drop whatever the repository folder has left that is empty or stale."""
    root = repo_dir(repo)
    snapshot = snapshot_dir(repo, commit)
    for name in filenames:
        pointer = snapshot / name
        blob = pointer.resolve() if pointer.is_symlink() else None
        pointer.unlink(missing_ok=True)
        if blob is not None and blob.parent == (root / "blobs").resolve() and not _linked_elsewhere(root, blob):
            blob.unlink(missing_ok=True)
    _prune_empty(snapshot, stop=root / "snapshots")
    snapshots = root / "snapshots"
    gone = not snapshot.exists()
    nothing_left = not (snapshots.is_dir() and any(snapshots.iterdir()))
    for ref in list((root / "refs").rglob("*")):
        if ref.is_file() and (nothing_left or (gone and ref.read_text().strip() == commit)):
            ref.unlink()  # a branch pointing at a snapshot that is no longer here
    if nothing_left:
        for sub in ("refs", "blobs", "snapshots", ""):
            _prune_empty(root / sub, stop=root.parent)


def _linked_elsewhere(root: Path, blob: Path) -> bool:
    return any(p.is_symlink() and p.resolve() == blob for p in (root / "snapshots").rglob("*"))


def _prune_empty(directory: Path, stop: Path) -> None:
    """Remove `directory` and its empty parents up to (not including) `stop`, bottom-up."""
    if not directory.is_dir():
        return
    for sub in sorted((p for p in directory.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        if not any(sub.iterdir()):
            sub.rmdir()
    current = directory
    while current != stop and current.is_dir() and not any(current.iterdir()):
        current.rmdir()
        current = current.parent
