"""The model store and `mlx-shim create`: manifests, digests, atomic writes, Modelfile handling, and the
embedded default model's one-time registration."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from registry.local import LocalModelError, create_from_modelfile
from registry.names import ModelName
from registry.store import Store


def test_create_writes_a_manifest_with_real_digest_and_size(tmp_path: Path, tiny_model_dir: Path) -> None:
    store = Store(tmp_path)
    stored = create_from_modelfile(
        store,
        ModelName.parse("My-Model:v1"),
        f'FROM {tiny_model_dir.name}\nSYSTEM "hi"\nPARAMETER num_ctx 256\n',
        tiny_model_dir.parent,
    )
    raw = stored.manifest_path.read_bytes()
    assert stored.manifest_path == tmp_path / "manifests/registry.ollama.ai/library/My-Model/v1"
    assert stored.digest == hashlib.sha256(raw).hexdigest()
    assert json.loads(raw) == {
        "schemaVersion": 1,
        "source": {"type": "local", "path": str(tiny_model_dir)},
        "system": "hi",
        "parameters": {"num_ctx": 256},
    }
    info = stored.info()
    assert info.size == sum(f.stat().st_size for f in tiny_model_dir.rglob("*") if f.is_file())
    assert info.architecture == "qwen2" and info.quantization_level == "Q4"
    assert info.parameter_count > 100_000
    # Lookup is case-insensitive and adopts the stored casing, as Ollama's getExistingName does.
    found = store.get(ModelName.parse("my-model:V1"))
    assert found is not None and found.name.display == "My-Model:v1"


def test_from_an_existing_name_inherits_and_overrides(tmp_path: Path, tiny_model_dir: Path) -> None:
    store = Store(tmp_path)
    create_from_modelfile(store, ModelName.parse("base"), f"FROM {tiny_model_dir}\nSYSTEM one\n", tmp_path)
    child = create_from_modelfile(store, ModelName.parse("child"), "FROM base\nPARAMETER temperature 0.1\n", tmp_path)
    assert child.system == "one" and child.parameters == {"temperature": 0.1}
    assert child.model_dir == tiny_model_dir


@pytest.mark.parametrize(
    ("modelfile", "message"),
    [
        ("FROM /nonexistent/dir\n", "invalid model name"),
        ("FROM nope\n", "model 'nope' not found"),
        ("FROM {tmp}\n", "the files are not an MLX model: no config.json"),
        ('FROM {model}\nTEMPLATE "{{{{ template \\"x\\" }}}}"\n', "template error: "),
        ("FROM {model}\nADAPTER ./lora\n", "ADAPTER is not supported: mlx-shim does not apply LoRA adapters"),
        ("FROM {model}\nMESSAGE bot hi\n", 'role must be one of "system", "user", or "assistant"'),
    ],
)
def test_create_rejects_what_it_cannot_honour(
    tmp_path: Path, tiny_model_dir: Path, modelfile: str, message: str
) -> None:
    text = modelfile.format(tmp=tmp_path, model=tiny_model_dir)
    with pytest.raises(LocalModelError, match=message):
        create_from_modelfile(Store(tmp_path), ModelName.parse("x"), text, tmp_path)
    assert Store(tmp_path).list() == []


def test_failed_write_keeps_the_old_manifest(tmp_path: Path, tiny_model_dir: Path) -> None:
    store = Store(tmp_path)
    name = ModelName.parse("keep")
    before = create_from_modelfile(store, name, f"FROM {tiny_model_dir}\n", tmp_path)
    with pytest.raises(TypeError):
        store.put(name, {"source": {"type": "local", "path": str(tiny_model_dir)}, "bad": object()})
    after = store.get(name)
    assert after is not None and after.digest == before.digest
    assert [p.name for p in before.manifest_path.parent.iterdir()] == ["latest"]  # no temporary files left


def test_a_model_whose_directory_vanished_is_not_found(tmp_path: Path, tiny_model_dir: Path) -> None:
    """The store keeps the manifest (it is the user's), but the server neither lists nor runs the model."""
    import httpx

    from tests.conftest import start_server, stop_server

    copy = tmp_path / "copy"
    shutil.copytree(tiny_model_dir, copy)
    home = tmp_path / "home"
    home.mkdir()
    create_from_modelfile(Store(home), ModelName.parse("gone"), f"FROM {copy}\n", tmp_path)
    shutil.rmtree(copy)
    server = start_server(home)
    try:
        assert httpx.get(server.url + "/api/tags").json() == {"models": []}
        resp = httpx.post(
            server.url + "/api/chat", json={"model": "gone", "messages": [{"role": "user", "content": "hi"}]}
        )
        assert (resp.status_code, resp.json()) == (404, {"error": "model 'gone' not found"})
        assert httpx.get(server.url + "/").status_code == 200
    finally:
        stop_server(server)


def test_model_facts_are_read_once_and_again_when_a_file_changes(tmp_path: Path, tiny_model_dir: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    store = Store(tmp_path / "home")
    stored = store.put(ModelName.parse("facts"), {"source": {"type": "local", "path": str(model)}})
    first = stored.info()
    assert stored.info() is first  # same files, same answer, no second read
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 12345}))
    changed = stored.info()
    assert changed.context_length == 12345 and changed.size != first.size
    (model / "extra.txt").write_text("x")
    assert stored.info().size == changed.size + 1


def test_a_name_in_another_casing_is_found_also_when_written_after_a_miss(tmp_path: Path, tiny_model_dir: Path) -> None:
    store = Store(tmp_path)
    assert store.get(ModelName.parse("Later:V1")) is None
    Store(tmp_path).put(ModelName.parse("later:v1"), {"source": {"type": "local", "path": str(tiny_model_dir)}})
    found = store.get(ModelName.parse("LATER:v1"))
    assert found is not None and found.name.display == "later:v1"
    found.manifest_path.unlink()
    assert store.get(ModelName.parse("LATER:v1")) is None


def test_a_model_that_fails_to_load_answers_500_and_the_server_keeps_serving(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    import httpx

    from tests.conftest import start_server, stop_server

    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    home = tmp_path / "home"
    home.mkdir()
    stored = create_from_modelfile(Store(home), ModelName.parse("broken"), f"FROM {broken}\n", tmp_path)
    create_from_modelfile(Store(home), ModelName.parse("fine"), f"FROM {tiny_model_dir}\n", tmp_path)
    weights = stored.model_dir / "model.safetensors"  # the directory itself: a local create copies nothing
    weights.write_bytes(weights.read_bytes()[:-1000])  # after create: the header still parses, the tensors are short
    server = start_server(home)
    try:
        body = {"messages": [{"role": "user", "content": "hi"}], "stream": False, "think": False}
        resp = httpx.post(server.url + "/api/chat", json={"model": "broken", **body}, timeout=60)
        assert resp.status_code == 500 and "model.safetensors: truncated" in resp.json()["error"]
        streamed = httpx.post(server.url + "/api/chat", json={"model": "broken", **body, "stream": True}, timeout=60)
        assert streamed.status_code == 500 and list(streamed.json()) == ["error"]
        ok = httpx.post(server.url + "/api/chat", json={"model": "fine", **body}, timeout=60)
        assert ok.status_code == 200 and ok.json()["done"]
        # the listings skip it (and say why once in the log) instead of failing for every client
        for _ in range(3):
            tags = httpx.get(server.url + "/api/tags")
            assert tags.status_code == 200 and [m["name"] for m in tags.json()["models"]] == ["fine:latest"]
        assert (home / "server.log").read_text().count("model broken:latest is not listed") == 1
    finally:
        stop_server(server)


@pytest.mark.parametrize(
    ("model_type", "family"),
    [("qwen2", "qwen2"), ("llama", "llama"), ("mistral", "llama"), ("nomic_bert", "nomic-bert"), ("phi3", "phi3")],
)
def test_family_is_ollamas_architecture_name(
    tmp_path: Path, tiny_model_dir: Path, model_type: str, family: str
) -> None:
    """details.family and general.architecture use GGUF's names, which clients show (`ollama show`)."""
    from registry.model_dir import ModelDirInfo
    from shim.ollama.shapes import details
    from shim.ollama.show import model_info

    model = tmp_path / "m"
    shutil.copytree(tiny_model_dir, model)
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "model_type": model_type}))
    info = ModelDirInfo.read(model)
    assert info.architecture == model_type  # what loads it
    assert details(info)["family"] == family and details(info)["families"] == [family]
    shown = model_info(info)
    assert shown["general.architecture"] == family and f"{family}.block_count" in shown
