"""Freeing what a model no longer named held: its assembled directory and blobs (`Store.release_if_unused`) and the
Hugging Face cache files mlx-shim downloaded for it. Called by whatever removes or replaces a name: delete, copy,
create, pull and the Ollama-library import."""

from __future__ import annotations

from pathlib import Path

from registry import hf_cache
from registry.store import Store, StoredModel


def release_replaced(store: Store, replaced: StoredModel) -> None:
    """A name now points at another model (copy or create over it): free what only the old model held, its
    assembled directory and its downloaded weights."""
    store.release_if_unused(replaced)
    release_weights(store, replaced)


def release_weights(store: Store, removed: StoredModel) -> None:
    """After `removed`'s manifest is gone: delete from the Hugging Face cache the files mlx-shim downloaded
    for it, unless another name still uses the same repo+revision. A local FROM directory is never touched,
    nor cache files mlx-shim found already there."""
    source = removed.manifest.get("source", {})
    if source.get("type") != "hf" or not source.get("downloaded"):
        return
    key = (source.get("repo"), source.get("revision"))
    snapshot = hf_cache.snapshot_dir(source["repo"], source["revision"]).resolve()
    for other in store.list():
        other_source = other.manifest.get("source", {})
        if other_source.get("type") == "hf" and (other_source.get("repo"), other_source.get("revision")) == key:
            return
        if other_source.get("type") == "local" and Path(other_source.get("path", "")).resolve() == snapshot:
            return  # someone created a model FROM the snapshot directory itself
    hf_cache.remove_files(source["repo"], source["revision"], list(source["downloaded"]))
