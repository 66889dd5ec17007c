"""The store-path check at start, before rank 0 serves: every rank must have the store at rank 0's path, and
every stored model's files where rank 0 has them, with the same names and sizes (the ranks load by path; a
host with another store or an older copy of a model would otherwise fail at its first load, or load other
weights). Rank 0 shares its store path and one fingerprint per model; each rank compares and the ranks gather
what they found, so every rank ends at once with an error naming the rank, its host and the path.

Names and sizes, not contents: hashing a 70B model's weights at every start would take minutes."""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path

import mlx.core as mx

from registry.store import Store
from shim.config import store_home
from shim.distributed.wire import Op, gather_reports, share


class StoreMismatch(Exception):
    """Some rank's store is not rank 0's; the message says which rank, on which host, and what differs."""


def listing(store: Store) -> Op:
    """Rank 0's side: its store path and, per model whose files it has, their directory and fingerprint."""
    models = {}
    for stored in store.list():
        fingerprint = files_fingerprint(stored.model_dir)
        if fingerprint is not None:
            models[stored.name.display] = [str(stored.model_dir), fingerprint]
    return {"op": "store", "home": str(store.home.resolve()), "models": models}


def check_store(group: mx.distributed.Group, mine: Op | None) -> None:
    """Rank 0 passes its `listing`, every other rank None; raises StoreMismatch on every rank when any rank's
    store differs from rank 0's."""
    theirs = share(group, mine)
    problem = "" if mine is not None else differences(theirs, store_home().resolve())
    reports = gather_reports(group, f"on {socket.gethostname()}: {problem}" if problem else "")
    for rank, (text, _) in enumerate(reports):
        if text:
            raise StoreMismatch(f"rank {rank} {text}: every host needs the same store at the same path")


def differences(leader: Op, home: Path) -> str:
    """What differs between rank 0's `leader` listing and this host's store at `home` ("": nothing)."""
    if str(home) != leader["home"]:
        return f"its store is {home}, rank 0's is {leader['home']}"
    if not home.is_dir():
        return f"no store at {home}"
    for name, (directory, fingerprint) in leader["models"].items():
        mine = files_fingerprint(Path(directory))
        if mine is None:
            return f"no model files for {name} at {directory}"
        if mine != fingerprint:
            return f"the files for {name} at {directory} are not rank 0's (names or sizes differ)"
    return ""


def files_fingerprint(directory: Path) -> str | None:
    """The sha256 of the sorted relative names and sizes of the files under `directory` (links followed: a
    pulled model's snapshot links into the Hugging Face cache's blobs); None when it is not a directory."""
    if not directory.is_dir():
        return None
    digest = hashlib.sha256()
    for root, _, names in sorted(os.walk(directory, followlinks=True)):
        for name in sorted(names):
            path = Path(root, name)
            size = path.stat().st_size if path.exists() else -1
            digest.update(f"{path.relative_to(directory)}\0{size}\n".encode())
    return digest.hexdigest()
