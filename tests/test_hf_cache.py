"""The Hugging Face cache layout as mlx-shim writes and frees it (registry/hf_cache.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry import hf_cache


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    return tmp_path / "hf" / "hub"


def blob(repo: str, etag: str, data: bytes) -> None:
    path = hf_cache.repo_dir(repo) / "blobs" / etag
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_cache_location_follows_huggingface_hub(cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert hf_cache.repo_dir("org/name") == cache / "models--org--name"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))
    assert (
        hf_cache.snapshot_dir("org/name", "abc") == tmp_path / "elsewhere" / "models--org--name" / "snapshots" / "abc"
    )


def test_links_are_relative_and_replace_atomically(cache: Path) -> None:
    blob("org/m", "e1", b"one")
    blob("org/m", "e2", b"two")
    pointer = hf_cache.link_blob("org/m", "c1", "sub/w.safetensors", "e1")
    assert pointer.read_bytes() == b"one" and not Path(pointer.readlink()).is_absolute()
    hf_cache.link_blob("org/m", "c1", "sub/w.safetensors", "e2")
    assert pointer.read_bytes() == b"two"
    assert [p.name for p in pointer.parent.iterdir()] == ["w.safetensors"]


def test_remove_keeps_blobs_another_revision_links(cache: Path) -> None:
    blob("org/m", "shared", b"weights")
    blob("org/m", "only-c1", b"config")
    hf_cache.link_blob("org/m", "c1", "w.safetensors", "shared")
    hf_cache.link_blob("org/m", "c1", "config.json", "only-c1")
    hf_cache.link_blob("org/m", "c2", "w.safetensors", "shared")
    hf_cache.write_ref("org/m", "main", "c1")
    hf_cache.remove_files("org/m", "c1", ["w.safetensors", "config.json"])
    root = hf_cache.repo_dir("org/m")
    assert not (root / "snapshots" / "c1").exists()
    assert (root / "blobs" / "shared").read_bytes() == b"weights"  # c2 still uses it
    assert not (root / "blobs" / "only-c1").exists()
    assert (root / "snapshots" / "c2" / "w.safetensors").read_bytes() == b"weights"
    hf_cache.remove_files("org/m", "c2", ["w.safetensors"])
    assert not root.exists()  # nothing left: refs, blobs and the folder go too


def test_remove_leaves_files_it_was_not_asked_to_remove(cache: Path) -> None:
    blob("org/m", "mine", b"pulled")
    blob("org/m", "theirs", b"was already here")
    hf_cache.link_blob("org/m", "c1", "model.safetensors", "mine")
    hf_cache.link_blob("org/m", "c1", "extra.json", "theirs")
    hf_cache.remove_files("org/m", "c1", ["model.safetensors"])
    snapshot = hf_cache.snapshot_dir("org/m", "c1")
    assert (snapshot / "extra.json").read_bytes() == b"was already here"
    assert not (snapshot / "model.safetensors").exists()
    assert not (hf_cache.repo_dir("org/m") / "blobs" / "mine").exists()
