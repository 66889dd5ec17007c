"""Replay each recorded exchange with real Ollama v0.24.0 against mlx-shim and compare the bytes that
must match: status, content type, key sets and JSON types, NDJSON framing, and exact error texts."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.recordings import Recording, all_names, load

# The recorded `tiny` is registered under the same name in the `server` fixture, so request bodies,
# error texts and model names apply unchanged.


def shape(value: Any) -> Any:
    """Keys and JSON types, recursively (the first element stands for a list)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "int" if isinstance(value, int) else "number"
    return type(value).__name__


def send(server: Any, rec: Recording) -> httpx.Response:
    return httpx.request(rec.method, server.url + rec.path, content=rec.body, timeout=120)


def unload_everything(server: Any) -> None:
    """The recordings start with nothing loaded (05 lists no models); earlier test modules loaded some."""
    for model in httpx.get(server.url + "/api/ps").json()["models"]:
        httpx.post(server.url + "/api/generate", json={"model": model["name"], "keep_alive": 0}, timeout=60)


@pytest.mark.parametrize("name", all_names())
def test_recorded_exchange(server: Any, name: str) -> None:
    rec = load(name)
    if name.startswith("05-"):
        unload_everything(server)
    resp = send(server, rec)
    assert resp.status_code == rec.status, resp.text
    assert resp.headers.get("content-type") == rec.headers.get("content-type")
    if "allow" in rec.headers:
        assert resp.headers.get("allow") == rec.headers["allow"]
    if rec.method == "HEAD":
        assert resp.content == b""
        return
    if rec.headers.get("content-type") == "text/event-stream":
        assert_same_sse(rec, resp)
        return
    if not rec.headers.get("content-type", "").startswith("application/"):
        assert resp.content == rec.response  # gin's plain-text 404/405 bodies and `Ollama is running`
        return
    if rec.status != 200 or name.startswith("03-"):
        assert resp.content == rec.response  # error texts (and the version) are exact
        return
    if rec.headers["content-type"] == "application/x-ndjson":
        assert_same_stream(rec, resp)
        return
    expected, actual = json.loads(rec.response), resp.json()
    if name.startswith(("06-", "07-")):  # model_info and tensors describe each model: keys differ, the kinds do not
        assert "general.architecture" in actual.pop("model_info") and expected.pop("model_info")
        assert {"name", "type", "shape"} == set(actual["tensors"][0]) == set(expected["tensors"][0])
        actual.pop("tensors"), expected.pop("tensors")
        expected["details"]["format"] = "safetensors"
    if name.startswith(("04-", "38-")):  # our tags carry additive `capabilities`, as newer Ollama does
        recorded = [m["name"] for m in expected["models"]]
        actual["models"] = [m for m in actual["models"] if m["name"] in recorded]
        assert [m["name"] for m in actual["models"]] == recorded  # the same models, newest first
        for model in actual["models"]:
            model.pop("capabilities")
        for model in expected["models"]:
            model["details"]["format"] = "safetensors"
    assert shape(actual) == shape(expected)
    # One compact object; gin's c.JSON ends without a newline, the /v1 layer's json.Encoder with one.
    assert resp.content.count(b"\n") == rec.response.count(b"\n") <= 1


def assert_same_stream(rec: Recording, resp: httpx.Response) -> None:
    expected = [json.loads(line) for line in rec.response.strip().split(b"\n")]
    raw = resp.content
    assert raw.endswith(b"\n") and b"\n\n" not in raw and not raw.startswith(b"\n")
    actual = [json.loads(line) for line in raw.split(b"\n")[:-1]]
    assert all(b"\n" not in json.dumps(obj).encode() for obj in actual)
    assert shape(actual[-1]) == shape(expected[-1])
    for line in actual[:-1]:
        assert shape(line) == shape(expected[0])
    assert [line["done"] for line in actual] == [False] * (len(actual) - 1) + [True]


def assert_same_sse(rec: Recording, resp: httpx.Response) -> None:
    """`data: {json}` frames separated by blank lines, ending with `data: [DONE]` (the v0.24.0 layout: the
    role in every delta, finish_reason on a last chunk with empty content)."""

    def frames(raw: bytes) -> list[bytes]:
        assert raw.endswith(b"\n\n") and b"\n\n\n" not in raw
        return [f.removeprefix(b"data: ") for f in raw.strip(b"\n").split(b"\n\n")]

    expected, actual = frames(rec.response), frames(resp.content)
    assert actual[-1] == expected[-1] == b"[DONE]"
    chunks = [json.loads(f) for f in actual[:-1]]
    recorded = [json.loads(f) for f in expected[:-1]]
    assert shape(chunks[-1]) == shape(recorded[-1]) and chunks[-1]["choices"][0]["finish_reason"]
    for chunk in chunks[:-1]:
        assert shape(chunk) == shape(recorded[0]) and chunk["choices"][0]["finish_reason"] is None
