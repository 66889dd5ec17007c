"""Importing an Ollama library (`mlx-shim import`, `POST /api/import`) against the real server and the real
SmolLM2 GGUF: progress, what /api/show carries over, a real answer, what is skipped and why, and an Ollama
store left exactly as it was."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Server, cli, start_server, stop_server
from tests.ollama_library import CHATML_TEMPLATE, LICENSE, SYSTEM, Library, build_test_library, snapshot


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Library:
    return build_test_library(tmp_path_factory.mktemp("ollama") / "models", tmp_path_factory.mktemp("scratch"))


@pytest.fixture(scope="module")
def library_state(library: Library) -> dict[str, Any]:
    return snapshot(library.root)


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, library: Library, library_state: dict[str, Any]
) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("home"), {"OLLAMA_MODELS": str(library.root)})
    yield srv
    stop_server(srv)
    assert snapshot(library.root) == library_state  # nothing in Ollama's store was written, linked or chmodded


def ndjson(response: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(line) for line in response.text.splitlines()]


def model_dir(server: Server, name: str) -> Path:
    shown = httpx.post(f"{server.url}/api/show", json={"model": name}).json()
    return Path(shown["modelfile"].split("\nFROM ", 1)[1].split("\n", 1)[0])


def test_cli_import_converts_and_carries_the_settings_over(server: Server, tiny_model_dir: Path) -> None:
    # A name we already have is replaced, as a pull replaces it: what only it held is released.
    (server.home / "Modelfile").write_text(f"FROM {tiny_model_dir}\n")
    assert cli("create", "smollm2:135m", "-f", str(server.home / "Modelfile"), env=server.env).returncode == 0
    replaced = model_dir(server, "smollm2:135m")
    assert replaced.parent == server.home / "models"

    result = cli("import", "smollm2:135m", env=server.env)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == "importing smollm2:135m"
    assert "parsing GGUF" in lines and "writing manifest" in lines
    assert lines[-2:] == ["imported smollm2:135m", "success"]
    assert not replaced.exists()

    shown = httpx.post(f"{server.url}/api/show", json={"model": "smollm2:135m"}).json()
    assert shown["template"] == CHATML_TEMPLATE and shown["system"] == SYSTEM and shown["license"] == LICENSE
    assert shown["parameters"].splitlines() == [
        'stop                           "<|im_start|>"',
        'stop                           "<|im_end|>"',
        "num_ctx                        2048",
    ]
    details = shown["details"]  # what the converted MLX model really is, not what the GGUF was
    assert details["format"] == "safetensors" and details["family"] == "llama"
    assert details["parameter_size"].endswith("M") and details["quantization_level"]
    assert shown["model_info"]["general.architecture"] == "llama"
    tags = {m["name"]: m for m in httpx.get(f"{server.url}/api/tags").json()["models"]}
    converted = model_dir(server, "smollm2:135m")
    assert tags["smollm2:135m"]["size"] == sum(p.stat().st_size for p in converted.rglob("*") if p.is_file())

    chat = {
        "model": "smollm2:135m",
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "stream": False,
        "options": {"temperature": 0, "num_predict": 12},
    }
    answer = httpx.post(f"{server.url}/api/chat", json=chat, timeout=120).json()
    assert "Paris" in answer["message"]["content"], answer


def test_http_import_of_everything_reports_what_it_skips(server: Server) -> None:
    response = httpx.post(f"{server.url}/api/import", json={}, timeout=600)
    assert response.status_code == 200 and response.headers["content-type"] == "application/x-ndjson"
    lines = ndjson(response)
    statuses = [line["status"] for line in lines]
    summary = lines[-1]
    assert summary["status"] == "success"
    assert sorted(summary["imported"]) == ["hf.co/someone/smol-vision:latest", "smollm2:135m"]
    reasons = {s["model"]: s["reason"] for s in summary["skipped"]}
    assert set(reasons) == {"qwen3-coder:480b-cloud", "unfinished:latest", "alien:latest", "adapted:latest",
                            "mlx-engine:latest"}  # fmt: skip
    assert reasons["qwen3-coder:480b-cloud"].startswith("a cloud model")
    assert "unfinished" in reasons["unfinished:latest"] and "-partial" in reasons["unfinished:latest"]
    assert "alienformer" in reasons["alien:latest"]
    assert "adapter" in reasons["adapted:latest"] and "MLX-engine" in reasons["mlx-engine:latest"]
    assert f"skipping alien:latest: {reasons['alien:latest']}" in statuses
    assert any(s.startswith("note: its vision projector is not imported") for s in statuses)
    assert any(s.startswith("note: Ollama renders its prompts in Go code (renderer qwen3-vl") for s in statuses)

    # The same GGUF is converted once: both names use one directory, and the second import found it.
    assert model_dir(server, "hf.co/someone/smol-vision") == model_dir(server, "smollm2:135m")
    assert statuses.count("using existing layer sha256:" + summary_digest(server)) == 2
    assert not any(s.startswith("converting llama") for s in statuses)  # the first test converted it
    vision = httpx.post(f"{server.url}/api/show", json={"model": "hf.co/someone/smol-vision"}).json()
    assert "template" in vision and vision["template"] != CHATML_TEMPLATE  # the GGUF's own chat template
    assert (vision["renderer"], vision["parser"]) == ("qwen3-vl", "qwen3-vl")  # kept, as `ollama show` has them
    assert vision["messages"] == [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    assert not [p.name for p in (server.home / "models").iterdir() if p.name.startswith(".")]  # no staging left


def summary_digest(server: Server) -> str:
    manifest = server.home / "manifests/registry.ollama.ai/library/smollm2/135m"
    return json.loads(manifest.read_text())["imported_from"]["model"].removeprefix("sha256:")


def test_import_errors_and_guard(server: Server, library: Library) -> None:
    bad = httpx.post(f"{server.url}/api/import", json={"models": ["bad name!"]})
    assert (bad.status_code, bad.json()) == (400, {"error": "invalid model name"})
    missing = httpx.post(f"{server.url}/api/import", json={"models": ["nope"]})
    assert missing.status_code == 404
    assert missing.json() == {"error": f"model 'nope' not found in the Ollama library at {library.root}"}
    wrong = httpx.post(f"{server.url}/api/import", json={"models": "smollm2"})
    assert wrong.status_code == 400 and "cannot unmarshal string" in wrong.json()["error"]
    rebinding = httpx.post(f"{server.url}/api/import", json={}, headers={"Host": "attacker.example"})
    assert (rebinding.status_code, rebinding.content) == (403, b"")
    page = httpx.post(f"{server.url}/api/import", json={}, headers={"Origin": "https://attacker.example"})
    assert (page.status_code, page.content) == (403, b"")

    one = httpx.post(f"{server.url}/api/import", json={"models": ["alien"], "stream": False}, timeout=120)
    assert one.status_code == 200 and one.headers["content-type"] == "application/json"
    assert one.json()["imported"] == [] and one.json()["skipped"][0]["model"] == "alien:latest"
    failed = cli("import", "alien", "qwen3-coder:480b-cloud", env=server.env)
    assert failed.returncode == 1
    assert failed.stderr.splitlines()[-1].startswith("Error: not imported: alien:latest: ")
    assert "alien:latest" not in [m["name"] for m in httpx.get(f"{server.url}/api/tags").json()["models"]]
