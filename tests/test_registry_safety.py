"""What a hostile or unlucky input must never do to the store: write outside it, or fail a create that
another create raced to the same files."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from registry import hf_pull
from registry.catalog import Resolved

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _sibling(name: str, lfs: bool = False) -> Any:
    return SimpleNamespace(
        rfilename=name, size=2, blob_id="ab" * 20, lfs=SimpleNamespace(sha256="cd" * 32) if lfs else None
    )


def _hub_lists(monkeypatch: pytest.MonkeyPatch, sha: str, names: list[str]) -> None:
    """The Hub is outside the machine: its listing is what a hostile one could answer."""
    from huggingface_hub import HfApi

    siblings = [_sibling("config.json"), _sibling("model.safetensors", lfs=True), *(_sibling(n) for n in names)]
    monkeypatch.setattr(HfApi, "model_info", lambda *a, **k: SimpleNamespace(sha=sha, siblings=siblings))


@pytest.mark.parametrize("name", ["../../../../evil.json", "a/../../../../../evil.json", "/tmp/evil.json"])
def test_a_hub_listing_a_path_outside_the_snapshot_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    _hub_lists(monkeypatch, COMMIT, [name])
    with pytest.raises(hf_pull.PullError, match="invalid file name"):
        hf_pull._remote_manifest(Resolved("mlx-community/x", "main"))


def test_a_hub_commit_that_is_not_a_sha_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    _hub_lists(monkeypatch, "../../../../elsewhere", [])
    with pytest.raises(hf_pull.PullError, match="which commit"):
        hf_pull._remote_manifest(Resolved("mlx-community/x", "main"))
