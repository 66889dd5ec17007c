"""Blobs and `POST /api/create` against the real server: uploads, digests, every error text, and models
created from uploaded files or from another model that then really generate."""

from __future__ import annotations

import hashlib
import json
import shutil
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import ollama
import pytest

from tests.conftest import start_server, stop_server

ZEROS = "sha256:" + "0" * 64


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def upload_dir(url: str, directory: Path) -> dict[str, str]:
    files = {}
    for path in sorted(p for p in directory.iterdir() if p.is_file()):
        data = path.read_bytes()
        digest = digest_of(data)
        if httpx.head(f"{url}/api/blobs/{digest}").status_code == 404:
            assert httpx.post(f"{url}/api/blobs/{digest}", content=data).status_code in (200, 201)
        files[path.name] = digest
    return files


@pytest.fixture
def own_model_dir(tmp_path: Path, tiny_model_dir: Path) -> Path:
    """The tiny model plus a file of its own: a file set (so an assembled directory) no other test shares."""
    directory = tmp_path / "own-model"
    shutil.copytree(tiny_model_dir, directory)
    (directory / "NOTICE").write_text(f"made for {tmp_path.name}\n")
    return directory


def create(url: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{url}/api/create", json=body, timeout=60)


def delete(url: str, name: str) -> None:
    """As `ollama rm` does: unload first (a deleted name can no longer be unloaded), then delete."""
    httpx.post(f"{url}/api/generate", json={"model": name, "keep_alive": 0}, timeout=60)
    assert httpx.request("DELETE", f"{url}/api/delete", json={"model": name}).status_code == 200


def ndjson(response: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(line) for line in response.text.splitlines()]


def test_blob_head_post_and_digest_checks(server: Any) -> None:
    data = b"a blob of bytes for mlx-shim\n"
    digest = digest_of(data)
    assert httpx.head(f"{server.url}/api/blobs/{ZEROS}").status_code == 404
    missing = httpx.get(f"{server.url}/api/blobs/{ZEROS}")
    assert missing.status_code == 405  # gin: known path, wrong method
    assert httpx.head(f"{server.url}/api/blobs/{digest}").status_code == 404
    first = httpx.post(f"{server.url}/api/blobs/{digest}", content=data)
    assert (first.status_code, first.content) == (201, b"")
    assert httpx.head(f"{server.url}/api/blobs/{digest}").status_code == 200
    assert httpx.post(f"{server.url}/api/blobs/{digest}", content=data).status_code == 200
    assert (server.home / "blobs" / ("sha256-" + digest[7:])).read_bytes() == data

    wrong = httpx.post(f"{server.url}/api/blobs/{ZEROS}", content=data)
    assert wrong.status_code == 400
    assert wrong.json() == {"error": f'digest mismatch, expected "{ZEROS}", got "{digest}"'}
    assert httpx.head(f"{server.url}/api/blobs/{ZEROS}").status_code == 404  # never kept
    assert not [p for p in (server.home / "blobs").iterdir() if p.name.startswith(".")]  # no temporaries

    for bad in ("notadigest", "sha256:123", "md5:" + "0" * 64):
        for method in ("HEAD", "POST"):
            response = httpx.request(method, f"{server.url}/api/blobs/{bad}", content=b"x")
            assert response.status_code == 400
            if method == "POST":
                assert response.json() == {"error": "invalid digest format"}


def test_head_of_a_missing_blob_has_ollamas_error_length(server: Any) -> None:
    """Recording 50: the 404's JSON body (invisible on HEAD) is `blob "<digest>" not found`."""
    response = httpx.head(f"{server.url}/api/blobs/{ZEROS}")
    assert response.headers["content-length"] == "102"


def test_create_from_uploaded_files_then_chat(server: Any, own_model_dir: Path, tiny_model_dir: Path) -> None:
    files = upload_dir(server.url, own_model_dir)
    response = create(server.url, {"model": "uploaded", "files": files, "system": "You are uploaded."})
    assert response.status_code == 200 and response.headers["content-type"] == "application/x-ndjson"
    lines = ndjson(response)
    assert lines[-2:] == [{"status": "writing manifest"}, {"status": "success"}]
    assert {"status": f"using existing layer sha256:{files['config.json'][7:]}"} in lines

    client = ollama.Client(host=server.url)
    shown = httpx.post(f"{server.url}/api/show", json={"model": "uploaded"}).json()
    assert shown["system"] == "You are uploaded."
    model_dir = Path(shown["modelfile"].split("\nFROM ", 1)[1].split("\n", 1)[0])
    assert model_dir.parent == server.home / "models"
    notice = model_dir / "NOTICE"
    blob = server.home / "blobs" / ("sha256-" + files["NOTICE"][7:])
    assert notice.stat().st_ino == blob.stat().st_ino  # a hard link, not a copy

    reply = client.chat(
        "uploaded", messages=[{"role": "user", "content": "hi"}], think=False, options={"num_predict": 8}
    )
    assert reply.message.content and reply.eval_count and reply.eval_count > 0

    # A second name over the same files shares the directory; deleting one keeps it, the last releases it.
    assert create(server.url, {"model": "uploaded2", "files": files, "stream": False}).json() == {"status": "success"}
    delete(server.url, "uploaded")
    assert model_dir.is_dir() and blob.is_file()
    delete(server.url, "uploaded2")
    assert not model_dir.exists() and not blob.exists()
    shared = server.home / "blobs" / ("sha256-" + files["config.json"][7:])
    assert shared.is_file()  # the fixture's `tiny` was created from the same config.json: still in use
    assert tiny_model_dir.is_dir()


def test_create_from_model_with_system_parameters_messages(server: Any) -> None:
    body = {
        "model": "derived:v1",
        "from": "qwen-tiny",
        "system": "be terse",
        "parameters": {"temperature": 0, "num_predict": 6, "stop": ["<|im_end|>"]},
        "messages": [{"role": "user", "content": "Remember 42."}, {"role": "assistant", "content": "OK."}],
        "license": "MIT License text",
        "stream": False,
    }
    response = create(server.url, body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.content == b'{"status":"success"}'

    shown = httpx.post(f"{server.url}/api/show", json={"model": "derived:v1"}).json()
    assert shown["system"] == "be terse"
    assert shown["license"] == "MIT License text"
    assert shown["messages"] == body["messages"]
    assert 'stop                           "<|im_end|>"' in shown["parameters"]
    assert "LICENSE MIT License text\nMESSAGE user Remember 42.\nMESSAGE assistant OK.\n" in shown["modelfile"]

    # The stored messages and system go before the request's: the prompt grows by exactly them.
    chat = {"model": "derived:v1", "messages": [{"role": "user", "content": "hi"}], "stream": False}
    with_history = httpx.post(f"{server.url}/api/chat", json=chat, timeout=60).json()
    plain = httpx.post(f"{server.url}/api/chat", json={**chat, "model": "qwen-tiny"}, timeout=60).json()
    assert with_history["prompt_eval_count"] > plain["prompt_eval_count"]
    assert with_history["eval_count"] <= 6  # num_predict from the created parameters
    delete(server.url, "derived:v1")


def test_create_streams_by_default(server: Any) -> None:
    response = create(server.url, {"model": "streamed", "from": "tiny"})
    assert response.headers["content-type"] == "application/x-ndjson"
    assert ndjson(response) == [{"status": "writing manifest"}, {"status": "success"}]
    delete(server.url, "streamed")


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"model": "x", "stream": False}, 400, "neither 'from' or 'files' was specified"),
        ({"model": "x"}, 400, "neither 'from' or 'files' was specified"),
        ({"from": "tiny"}, 400, "invalid model name"),
        ({"model": "bad name!", "from": "tiny"}, 400, "invalid model name"),
        ({"model": "x", "from": "nope", "stream": False}, 404, "model 'nope' not found"),
        ({"model": "x", "from": "bad name!", "stream": False}, 400, "invalid model name"),
        ({"model": "x", "files": {"/abs/config.json": ZEROS}}, 400, "file path must be relative"),
        ({"model": "x", "files": {"../config.json": ZEROS}}, 400, "file path must be relative"),
        ({"model": "x", "files": {"config.json": ""}}, 400, "invalid digest format"),
        ({"model": "x", "files": {"config.json": "md5:1"}}, 400, "invalid digest for config.json: invalid digest"),
        ({"model": "x", "files": {"config.json": ZEROS}}, 400, f"blob not found for config.json (digest {ZEROS})"),
        ({"model": "x", "from": "tiny", "quantize": "q5_K_M"}, 400, "unsupported quantization type Q5_K_M - supported"),
        ({"model": "x", "from": "tiny", "quantize": "q4_K_M"}, 400, "quantization is only supported for F16, BF16 and"),
        ({"model": "x", "from": "tiny", "template": "{{ if }}", "stream": False}, 400, "template error: "),
        ({"model": "x", "from": "tiny", "parameters": {"nope": 1}}, 400, "unknown parameter 'nope'"),
        ({"model": "x", "from": "tiny", "parameters": {"num_ctx": "many"}}, 400, "invalid int value [many]"),
        ({"model": "x", "from": "tiny", "license": 5}, 400, "license must be a string or a list of strings"),
        ({"model": "x", "from": 5}, 400, "json: cannot unmarshal number into Go struct field CreateRequest.from"),
    ],
)
def test_create_errors(server: Any, body: dict[str, Any], status: int, error: str) -> None:
    response = create(server.url, body)
    assert response.status_code == status, response.text
    assert response.json()["error"].startswith(error)
    assert "x:latest" not in [m["name"] for m in httpx.get(f"{server.url}/api/tags").json()["models"]]


def test_create_with_an_empty_body(server: Any) -> None:
    response = httpx.post(f"{server.url}/api/create")
    assert (response.status_code, response.json()) == (400, {"error": "missing request body"})


def test_files_that_are_not_a_model_are_refused(server: Any, tiny_model_dir: Path) -> None:
    files = upload_dir(server.url, tiny_model_dir)
    no_tokenizer = {k: v for k, v in files.items() if not k.startswith("tokenizer")}
    no_weights = {k: v for k, v in files.items() if not k.endswith(".safetensors")}
    readme = {"README.md": files["README.md"]}
    for subset, reason in [
        (no_tokenizer, "no tokenizer"),
        (no_weights, "no .safetensors weights"),
        (readme, "no config.json"),
    ]:
        response = create(server.url, {"model": "broken", "files": subset, "stream": False})
        assert response.status_code == 400
        assert response.json()["error"].startswith("the files are not an MLX model: ")
        assert reason in response.json()["error"]
    streamed = ndjson(create(server.url, {"model": "broken", "files": readme}))
    assert streamed[-1]["error"].startswith("the files are not an MLX model")
    assert not [p for p in (server.home / "models").iterdir() if p.name.startswith(".")]  # staging removed
    assert "broken:latest" not in [m["name"] for m in httpx.get(f"{server.url}/api/tags").json()["models"]]


def test_unknown_architecture_is_refused(server: Any, tiny_model_dir: Path) -> None:
    files = upload_dir(server.url, tiny_model_dir)
    config = json.loads((tiny_model_dir / "config.json").read_text())
    data = json.dumps({**config, "model_type": "no_such_arch"}).encode()
    httpx.post(f"{server.url}/api/blobs/{digest_of(data)}", content=data)
    body = {"model": "alien", "files": {**files, "config.json": digest_of(data)}, "stream": False}
    response = create(server.url, body)
    assert response.status_code == 400
    assert response.json()["error"] == (
        f"unsupported architecture 'no_such_arch': mlx-lm {version('mlx-lm')} cannot load it; upgrade mlx-lm "
        "(pip install -U mlx-lm) or pick another model"
    )


def test_a_copy_keeps_the_directory_until_the_last_name_goes(server: Any, own_model_dir: Path) -> None:
    files = upload_dir(server.url, own_model_dir)
    assert create(server.url, {"model": "original", "files": files, "stream": False}).status_code == 200
    shown = httpx.post(f"{server.url}/api/show", json={"model": "original"}).json()
    model_dir = Path(shown["modelfile"].split("\nFROM ", 1)[1].split("\n", 1)[0])
    assert httpx.post(f"{server.url}/api/copy", json={"source": "original", "destination": "copied"}).status_code == 200
    delete(server.url, "original")
    assert model_dir.is_dir()
    # Overwriting the last name that uses the directory (here by copying another model onto it) releases it.
    assert httpx.post(f"{server.url}/api/copy", json={"source": "tiny", "destination": "copied"}).status_code == 200
    assert not model_dir.exists()
    delete(server.url, "copied")


def test_restart_prunes_what_no_model_uses(tmp_path: Path, tiny_model_dir: Path) -> None:
    srv = start_server(tmp_path)
    try:
        files = upload_dir(srv.url, tiny_model_dir)
        assert create(srv.url, {"model": "kept", "files": files, "stream": False}).status_code == 200
        orphan = b"uploaded, never used"
        assert httpx.post(f"{srv.url}/api/blobs/{digest_of(orphan)}", content=orphan).status_code == 201
    finally:
        stop_server(srv)
    leftovers = [tmp_path / "blobs" / ".upload-interrupted", tmp_path / "models" / ("0" * 64)]
    leftovers[0].write_bytes(b"half")
    leftovers[1].mkdir()
    srv = start_server(tmp_path)
    try:
        assert httpx.head(f"{srv.url}/api/blobs/{digest_of(orphan)}").status_code == 404
        assert not any(path.exists() for path in leftovers)
        assert all(httpx.head(f"{srv.url}/api/blobs/{d}").status_code == 200 for d in files.values())
        body = {"model": "kept", "prompt": "hi", "stream": False, "think": False, "options": {"num_predict": 2}}
        assert httpx.post(f"{srv.url}/api/generate", json=body, timeout=60).json()["eval_count"] > 0
    finally:
        stop_server(srv)


def test_the_official_client_creates_from_blobs(server: Any, own_model_dir: Path) -> None:
    client = ollama.Client(host=server.url)
    files = {p.name: client.create_blob(p) for p in sorted(own_model_dir.iterdir())}
    assert files == upload_dir(server.url, own_model_dir)  # the same digests as computed here
    done = client.create(
        "official",
        files=files,
        system="Answer briefly.",
        parameters={"temperature": 0, "num_predict": 4},
        messages=[{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi!"}],
    )
    assert done.status == "success"
    statuses = [p.status for p in client.create("official", from_="official", system="Other.", stream=True)]
    assert statuses == ["writing manifest", "success"]
    reply = client.chat("official", messages=[{"role": "user", "content": "Who?"}], think=False)
    assert reply.eval_count is not None and 0 < reply.eval_count <= 4
    with pytest.raises(ollama.ResponseError) as error:
        client.create("official2")
    assert (error.value.status_code, error.value.error) == (400, "neither 'from' or 'files' was specified")
    delete(server.url, "official")


def test_a_full_disk_mid_upload_is_a_500_after_the_whole_body(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process: the store's disk fills after the first chunk. The server reads the rest of the body (the CLI
    would otherwise block sending it, forever) and answers with the cause."""
    import asyncio
    import errno

    from registry.blobs import Blobs
    from registry.store import Store
    from shim.app import create_app

    async def full_disk(self: Blobs, digest: str, chunks: Any) -> bool:
        async for _ in chunks:
            raise OSError(errno.ENOSPC, "No space left on device")
        return True

    monkeypatch.setattr(Blobs, "write", full_disk)
    sent: list[int] = []

    async def body() -> Any:
        for _ in range(64):
            sent.append(1)
            yield b"x" * 65536

    async def upload() -> httpx.Response:
        app = create_app(store=Store(tmp_path))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            return await client.post("/api/blobs/sha256:" + "0" * 64, content=body())

    response = asyncio.run(upload())
    assert response.status_code == 500
    assert response.json() == {"error": f"write blob sha256:{'0' * 64}: no space left on device"}
    assert len(sent) == 64
