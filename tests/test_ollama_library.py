"""The Ollama library reader and the import plan, in process (no server, no conversion): where the library is,
which models are chosen, and what a damaged or unusual manifest becomes."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry import ollama_library
from registry.ollama_import import ImportRequestError, carried_settings, select
from registry.ollama_library import ImportPlan, OllamaLibrary, Skip
from tests.ollama_library import Library, snapshot


def test_the_library_is_ollama_models_else_the_home_store_else_the_service_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "elsewhere"))
    assert OllamaLibrary().root == tmp_path / "elsewhere"
    monkeypatch.delenv("OLLAMA_MODELS")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    service = tmp_path / "usr/share/ollama/.ollama/models"
    monkeypatch.setattr(ollama_library, "SERVICE_LIBRARY", service)
    assert OllamaLibrary().root == tmp_path / "home/.ollama/models"  # neither exists: Ollama's default
    service.mkdir(parents=True)
    assert OllamaLibrary().root == service
    (tmp_path / "home/.ollama/models").mkdir(parents=True)
    assert OllamaLibrary().root == tmp_path / "home/.ollama/models"


def test_select_checks_every_name_first(tmp_path: Path) -> None:
    library = Library(tmp_path)
    library.manifest("registry.ollama.ai/library/llama3.2:latest", [("model", library.blob(b"GGUF..."))])
    reader = OllamaLibrary(tmp_path)
    assert [m.name.display for m in select(reader, ["LLAMA3.2", "llama3.2:latest"])] == ["llama3.2:latest"]
    assert [m.name.display for m in select(reader, [])] == ["llama3.2:latest"]
    with pytest.raises(ImportRequestError) as bad:
        select(reader, ["llama3.2", "bad name!"])
    assert (bad.value.status, bad.value.message) == (400, "invalid model name")
    with pytest.raises(ImportRequestError) as missing:
        select(reader, ["llama3.2", "nope:7b"])
    assert missing.value.status == 404 and missing.value.message.startswith("model 'nope:7b' not found")


def test_damaged_manifests_are_skipped_with_their_reason(tmp_path: Path) -> None:
    library = Library(tmp_path)
    gguf = library.blob(b"GGUF and some bytes")
    library.manifest("registry.ollama.ai/library/short:latest", [("model", (gguf[0], gguf[1] + 5))])
    library.manifest("registry.ollama.ai/library/gone:latest", [("model", ("sha256:" + "1" * 64, 3))])
    library.manifest("registry.ollama.ai/library/traversal:latest", [("model", ("sha256:../../etc/passwd", 3))])
    library.manifest("registry.ollama.ai/library/split:latest", [("model", gguf), ("model", gguf)])
    bad = tmp_path / "manifests/registry.ollama.ai/library/broken/latest"
    bad.parent.mkdir(parents=True)
    bad.write_text("{not json")
    before = snapshot(tmp_path)
    reader = OllamaLibrary(tmp_path)
    reasons = {}
    for model in reader.models():
        with pytest.raises(Skip) as skipped:
            reader.plan(model)
        reasons[model.name.model] = skipped.value.reason
    assert reasons["short"] == f"blob {gguf[0]} is {gguf[1]} bytes, its manifest says {gguf[1] + 5}"
    assert reasons["gone"] == f"blob sha256:{'1' * 64} is missing from {tmp_path / 'blobs'}"
    assert reasons["traversal"] == "its manifest names a malformed digest 'sha256:../../etc/passwd'"
    assert reasons["split"].startswith("its weights are split into 2 GGUF layers")
    assert reasons["broken"].startswith("its manifest cannot be read (JSONDecodeError")
    assert snapshot(tmp_path) == before


def test_settings_our_engine_cannot_use_are_left_out_with_a_note(tmp_path: Path) -> None:
    plan = ImportPlan(
        tmp_path / "x.gguf",
        "sha256:" + "2" * 64,
        template="{{ if }}",
        system="Be terse.",
        parameters={"stop": ["</s>"], "mirostat": 2, "num_ctx": "many", "temperature": 0.5},
        license=["MIT"],
        messages=[{"role": "user", "content": "Hi"}],
    )
    settings = carried_settings(plan)
    assert settings["parameters"] == {"stop": ["</s>"], "temperature": 0.5}
    assert "template" not in settings and settings["system"] == "Be terse." and settings["license"] == ["MIT"]
    assert settings["messages"] == [{"role": "user", "content": "Hi"}]
    assert settings["imported_from"] == {"ollama": True, "model": "sha256:" + "2" * 64}
    assert any(n.startswith("its TEMPLATE is left out") for n in plan.notes)
    assert "parameter mirostat is left out: unknown parameter 'mirostat'" in plan.notes
    assert "parameter num_ctx is left out: invalid int value [many]" in plan.notes


def test_params_and_messages_layers_that_are_not_json_are_left_out(tmp_path: Path) -> None:
    library = Library(tmp_path)
    gguf = library.blob(b"GGUF and some bytes")
    layers = [("model", gguf), ("params", library.blob(b"[1]")), ("messages", library.blob(b"{}"))]
    library.manifest("registry.ollama.ai/library/odd:latest", layers, {"model_format": "gguf", "requires": "0.30.0"})
    reader = OllamaLibrary(tmp_path)
    plan = reader.plan(reader.models()[0])
    assert plan.parameters == {} and plan.messages == []
    assert plan.notes == [
        "its params layer is not a JSON object and is left out",
        "its messages layer is not a JSON list of messages and is left out",
    ]
