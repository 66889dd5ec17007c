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


def test_creates_of_the_same_files_at_once_all_succeed(server: Any, tmp_path: Path, tiny_model_dir: Path) -> None:
    """Each create assembles the same directory under models/; the ones that lose the race to rename their
    staging folder there must use the winner's, not fail."""
    import shutil
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from tests.test_create import delete, upload_dir

    directory = tmp_path / "model"
    shutil.copytree(tiny_model_dir, directory)
    (directory / "NOTICE").write_text(f"race {tmp_path.name}\n")
    files = upload_dir(server.url, directory)
    names = [f"race-{i}" for i in range(6)]

    def create(name: str) -> httpx.Response:
        body = {"model": name, "files": files, "stream": False}
        return httpx.post(f"{server.url}/api/create", json=body, timeout=60)

    with ThreadPoolExecutor(len(names)) as pool:
        responses = list(pool.map(create, names))
    assert [(r.status_code, r.text) for r in responses] == [(200, '{"status":"success"}')] * len(names)
    for name in names:
        delete(server.url, name)


def test_a_moved_store_keeps_and_runs_its_created_models(tmp_path: Path, tiny_model_dir: Path) -> None:
    """Moving MLX_SHIM_HOME (to another disk, say) must not make the startup prune delete the models
    assembled from uploaded files: their manifests still name the old folder."""
    import httpx

    from tests.conftest import start_server, stop_server
    from tests.test_create import upload_dir

    old, new = tmp_path / "old-home", tmp_path / "new-home"
    old.mkdir()
    srv = start_server(old)
    try:
        files = upload_dir(srv.url, tiny_model_dir)
        body = {"model": "moved", "files": files, "stream": False}
        assert httpx.post(f"{srv.url}/api/create", json=body, timeout=60).status_code == 200
    finally:
        stop_server(srv)
    old.rename(new)
    assembled = next((new / "models").iterdir())
    srv = start_server(new)
    try:
        body = {"model": "moved", "prompt": "hi", "stream": False, "think": False, "options": {"num_predict": 2}}
        response = httpx.post(f"{srv.url}/api/generate", json=body, timeout=60)
        assert response.status_code == 200, response.text
        assert assembled.is_dir()
        assert httpx.request("DELETE", f"{srv.url}/api/delete", json={"model": "moved"}).status_code == 200
        assert not assembled.exists()  # the last name gone: its folder goes, in the store where it is now
    finally:
        stop_server(srv)


def test_a_delete_beside_a_create_of_the_same_files_never_leaves_a_broken_model(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    """Deleting the last name of an assembled folder releases the folder and its blobs; a create of the
    same files running beside it either fails cleanly (blob not found) or gets a model that is all there,
    never a name whose folder or blobs the delete removed under it."""
    import hashlib
    import shutil
    import sys
    import threading

    from registry.blobs import Blobs
    from registry.create import CreateError, CreateSpec, create_model
    from registry.names import ModelName
    from registry.store import Store

    store, blobs = Store(tmp_path), Blobs(tmp_path)
    blobs.root.mkdir()
    sources = {p.name: p for p in sorted(tiny_model_dir.iterdir()) if p.is_file()}
    files = {name: "sha256:" + hashlib.sha256(p.read_bytes()).hexdigest() for name, p in sources.items()}
    first, second = ModelName.parse("first"), ModelName.parse("second")
    outcomes: list[str] = []

    def create_second() -> None:
        try:
            list(create_model(store, CreateSpec(name=second, files=files)))
        except CreateError as e:
            outcomes.append(e.message.split(" for ")[0])
            return
        stored = store.get(second)
        intact = stored is not None and stored.model_dir.is_dir() and all(blobs.exists(d) for d in files.values())
        outcomes.append("created" if intact else "created broken")

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: the race shows within a few rounds
    try:
        for _ in range(15):
            for name, path in sources.items():
                shutil.copyfile(path, blobs.path(files[name]))
            list(create_model(store, CreateSpec(name=first, files=files)))
            threads = [threading.Thread(target=store.remove, args=(first,)), threading.Thread(target=create_second)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            store.remove(second)
    finally:
        sys.setswitchinterval(interval)
    assert set(outcomes) <= {"created", "blob not found"}, outcomes


def test_a_second_serve_on_a_busy_port_stops_before_pruning(tmp_path: Path) -> None:
    """As `ollama serve` does (it listens before it prunes): starting the server again by mistake fails on
    the busy port and leaves the running server's uploads alone (a client uploads blobs, then creates)."""
    import hashlib
    import os
    import subprocess
    import sys

    import httpx

    from tests.conftest import start_server, stop_server

    srv = start_server(tmp_path)
    try:
        data = b"uploaded by a client that is about to create a model"
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        assert httpx.post(f"{srv.url}/api/blobs/{digest}", content=data).status_code == 201
        env = {**os.environ, "OLLAMA_HOST": srv.host, "MLX_SHIM_HOME": str(tmp_path), "MLX_SHIM_NO_BUILTIN": "1"}
        second = subprocess.run(
            [sys.executable, "-m", "shim.cli", "serve"], env=env, capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 1
        assert f"Error: listen tcp {srv.host}: bind: address already in use" in second.stderr
        assert httpx.head(f"{srv.url}/api/blobs/{digest}").status_code == 200
    finally:
        stop_server(srv)


def test_two_file_names_one_file_on_a_case_insensitive_filesystem_never_rewrite_a_blob(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """macOS folds `Config.json` and `config.json` into one file, so linking the second fails with EEXIST.
    The copy fallback wrote through the first name's hard link into its blob: a stored blob no longer
    held the bytes its digest names. This machine's filesystem is case-sensitive, so os.link and
    shutil.copyfile answer as they do on APFS."""
    import hashlib
    import os
    import shutil

    from registry import create as create_module
    from registry.blobs import Blobs
    from registry.create import CreateError, CreateSpec, create_model
    from registry.names import ModelName
    from registry.store import Store

    real_link, real_copyfile = os.link, shutil.copyfile

    def folded(dst: Any) -> Path | None:
        dst = Path(dst)
        return next((p for p in dst.parent.iterdir() if p.name.lower() == dst.name.lower()), None)

    def case_insensitive_link(src: Any, dst: Any) -> None:
        if folded(dst) is not None:
            raise FileExistsError(17, "File exists", str(dst))
        real_link(src, dst)

    def case_insensitive_copyfile(src: Any, dst: Any) -> Any:
        return real_copyfile(src, folded(dst) or dst)  # opening `config.json` opens `Config.json`

    monkeypatch.setattr(create_module.os, "link", case_insensitive_link)
    monkeypatch.setattr(create_module.shutil, "copyfile", case_insensitive_copyfile)
    store, blobs = Store(tmp_path), Blobs(tmp_path)
    blobs.root.mkdir()
    files = {}
    for path in sorted(p for p in tiny_model_dir.iterdir() if p.is_file()):
        files[path.name] = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
        shutil.copyfile(path, blobs.path(files[path.name]))
    other = b'{"other": true}\n'
    files["Config.json"] = "sha256:" + hashlib.sha256(other).hexdigest()
    blobs.path(files["Config.json"]).write_bytes(other)
    with pytest.raises(CreateError, match="names the same file"):
        list(create_model(store, CreateSpec(name=ModelName.parse("folded"), files=files)))
    for digest in files.values():
        assert "sha256:" + hashlib.sha256(blobs.path(digest).read_bytes()).hexdigest() == digest
