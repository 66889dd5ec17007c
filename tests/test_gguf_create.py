"""`POST /api/create` from a GGUF (the official client's create_blob + create, and `mlx-shim create -f` with
`FROM ./x.gguf`), its errors, and `quantize` on MLX sources, against the real server."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import ollama
import pytest

from tests.conftest import Server, cli, start_server, stop_server
from tests.ollama_library import smollm2_gguf, write_unknown_architecture_gguf
from tests.test_create import digest_of, upload_dir
from tests.test_modelfile import assert_round_trips


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("home"))
    yield srv
    stop_server(srv)


def ndjson(response: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(line) for line in response.text.splitlines()]


def model_dirs(server: Server) -> list[str]:
    return sorted(p.name for p in (server.home / "models").iterdir()) if (server.home / "models").is_dir() else []


def manifest(server: Server, name: str) -> dict[str, Any]:
    return json.loads((server.home / "manifests/registry.ollama.ai/library" / name / "latest").read_text())


def test_the_official_client_creates_from_a_gguf_blob(server: Server) -> None:
    client = ollama.Client(host=server.url)
    digest = client.create_blob(smollm2_gguf())
    # Recognised by its magic bytes, whatever its name (as Ollama's detectModelTypeFromFiles).
    statuses = [p.status for p in client.create(model="smol", files={"weights.bin": digest}, stream=True)]
    assert statuses[:2] == ["parsing GGUF", "converting model"]  # Ollama's order, the conversion in between
    assert statuses[-3:] == [f"using existing layer {digest}", "writing manifest", "success"]
    shown = client.show("smol")
    assert shown.details.format == "safetensors" and shown.details.family == "llama"
    assert shown.modelinfo["general.architecture"] == "llama"
    assert "<|im_start|>" in (shown.template or "")  # the GGUF's own chat template
    stored = manifest(server, "smol")
    assert stored["files"] == {"weights.bin": digest}  # the GGUF blob stays: prune keeps it, a re-create skips it
    assert Path(stored["source"]["path"]).parent == server.home / "models"
    reply = client.generate("smol", "Hello", options={"num_predict": 2, "temperature": 0})
    assert reply.eval_count and reply.eval_count <= 2

    # quantize goes to the converter, with Ollama's rules: a quantized GGUF (Q4_1) cannot be requantized, and a
    # GGUF takes only the GGUF engine's names.
    before = model_dirs(server)
    for quantize, error in [
        ("q4_K_M", "quantization is only supported for F16, BF16 and F32 models"),
        ("int4", "unsupported quantization type INT4 - supported types are F32, F16, Q4_K_S, Q4_K_M, Q8_0"),
    ]:
        with pytest.raises(ollama.ResponseError) as refused:
            client.create(model="smol-q", files={"weights.bin": digest}, quantize=quantize)
        assert (refused.value.status_code, refused.value.error) == (400, error)
    assert model_dirs(server) == before


def test_cli_creates_from_a_gguf_file(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    try:
        os.link(smollm2_gguf(), tmp_path / "smol.gguf")
    except OSError:
        (tmp_path / "smol.gguf").symlink_to(smollm2_gguf())
    (tmp_path / "Modelfile").write_text(
        "FROM ./smol.gguf\nPARAMETER temperature 0\nSYSTEM Be brief.\nRENDERER qwen3\nPARSER qwen3\n"
    )
    result = cli("create", "smol-cli", "-f", str(tmp_path / "Modelfile"), env=server.env)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == "gathering model components" and lines[1].startswith("copying file sha256:")
    # RENDERER/PARSER are kept and shown, and the create says that the model's own template renders here.
    assert "note: renderer qwen3 and parser qwen3 are Ollama's Go code; mlx-shim renders with the model's " in (
        result.stderr
    )
    # The blob and the converted directory of the first test are used again: no upload, no conversion.
    assert "converting model" not in lines and lines[-2:] == ["writing manifest", "success"]
    assert manifest(server, "smol-cli")["source"] == manifest(server, "smol")["source"]
    shown = httpx.post(f"{server.url}/api/show", json={"model": "smol-cli"}).json()
    assert shown["system"] == "Be brief." and "temperature" in shown["parameters"]
    assert (shown["renderer"], shown["parser"]) == ("qwen3", "qwen3")
    assert "\nRENDERER qwen3\nPARSER qwen3\n" in shown["modelfile"]
    monkeypatch.setenv("OLLAMA_HOST", server.env["OLLAMA_HOST"])
    assert_round_trips(server, "smol-cli", tmp_path, capsys)


def test_an_unknown_architecture_is_refused_and_leaves_nothing(server: Server, tmp_path: Path) -> None:
    data = write_unknown_architecture_gguf(tmp_path / "alien.gguf").read_bytes()
    assert httpx.post(f"{server.url}/api/blobs/{digest_of(data)}", content=data).status_code == 201
    before = model_dirs(server)
    body = {"model": "alien", "files": {"alien.gguf": digest_of(data)}, "stream": False}
    response = httpx.post(f"{server.url}/api/create", json=body, timeout=60)
    assert response.status_code == 400 and "alienformer" in response.json()["error"]
    streamed = ndjson(httpx.post(f"{server.url}/api/create", json={**body, "stream": True}, timeout=60))
    assert streamed[0] == {"status": "parsing GGUF"} and "alienformer" in streamed[-1]["error"]
    assert model_dirs(server) == before  # no converted directory, no staging folder
    assert "alien:latest" not in [m["name"] for m in httpx.get(f"{server.url}/api/tags").json()["models"]]
    beside = {"model": "alien", "files": {"alien.gguf": digest_of(data), "README": digest_of(b"x")}}
    httpx.post(f"{server.url}/api/blobs/{digest_of(b'x')}", content=b"x")
    mixed = httpx.post(f"{server.url}/api/create", json=beside)
    assert (mixed.status_code, mixed.json()) == (400, {"error": "supplied file was not in GGUF format"})


@pytest.fixture(scope="module")
def float_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """The tiny model with its weights unpacked to float32: a model that can be quantized."""
    from mlx_lm import convert

    target = tmp_path_factory.mktemp("float") / "model"
    convert(str(tiny_model_dir), str(target), dequantize=True)
    return target


def test_quantize_an_mlx_model_with_mlx_lm(server: Server, float_model_dir: Path) -> None:
    files = upload_dir(server.url, float_model_dir)
    body = {"model": "q8", "files": files, "quantize": "q8_0"}
    statuses = [line["status"] for line in ndjson(httpx.post(f"{server.url}/api/create", json=body, timeout=120))]
    assert statuses == ["quantizing F32 model to Q8_0", "writing manifest", "success"]
    shown = httpx.post(f"{server.url}/api/show", json={"model": "q8"}).json()
    assert shown["details"]["quantization_level"] == "Q8"
    generated = {"model": "q8", "prompt": "hi", "stream": False, "think": False, "options": {"num_predict": 2}}
    assert httpx.post(f"{server.url}/api/generate", json=generated, timeout=60).json()["eval_count"] > 0

    # From a registered model, in Ollama's MLX-engine vocabulary; an already quantized one is refused.
    create = f"{server.url}/api/create"
    assert httpx.post(create, json={"model": "fp", "files": files, "stream": False}).status_code == 200
    q4 = httpx.post(create, json={"model": "q4", "from": "fp", "quantize": "int4", "stream": False}, timeout=120)
    assert q4.status_code == 200, q4.text
    assert httpx.post(f"{server.url}/api/show", json={"model": "q4"}).json()["details"]["quantization_level"] == "Q4"
    again = httpx.post(create, json={"model": "q44", "from": "q4", "quantize": "Q4_K_M"})
    assert again.status_code == 400
    assert again.json() == {"error": "quantization is only supported for F16, BF16 and F32 models"}


def test_a_local_modelfile_from_a_gguf_file_converts_in_place_or_says_why_not(tmp_path: Path) -> None:
    from registry.local import LocalModelError, create_from_modelfile
    from registry.names import ModelName
    from registry.store import Store

    store = Store(tmp_path / "home")
    write_unknown_architecture_gguf(tmp_path / "alien.gguf")
    (tmp_path / "notes.gguf").write_text("not a GGUF")
    for source, error in [("./alien.gguf", "alienformer"), ("./notes.gguf", "supplied file was not in GGUF format")]:
        with pytest.raises(LocalModelError) as refused:
            create_from_modelfile(store, ModelName.parse("local"), f"FROM {source}\n", tmp_path)
        assert error in str(refused.value)
    assert store.get(ModelName.parse("local")) is None
    assert not (tmp_path / "home/models").exists() or not list((tmp_path / "home/models").iterdir())
