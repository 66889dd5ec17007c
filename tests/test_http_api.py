"""Raw HTTP against the real server: exact error texts and statuses, framing, and request semantics
that the client library hides (load/unload, raw, context, templates, truncation, disconnects)."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from typing import Any

import httpx
import pytest

GREEDY = {"temperature": 0, "num_predict": 16}


def post(server: Any, path: str, body: dict[str, Any], timeout: float = 120) -> httpx.Response:
    return httpx.post(server.url + path, json=body, timeout=timeout)


@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [
        (
            "/api/generate",
            {"model": "tiny", "prompt": "hi", "raw": True, "system": "s"},
            400,
            "raw mode does not support template, system, or context",
        ),
        (
            "/api/generate",
            {"model": "tiny", "prompt": "hi", "options": {"temperature": "hot"}},
            500,
            'option "temperature" must be of type float32',
        ),
        (
            "/api/generate",
            {"model": "tiny", "prompt": "hi", "options": {"num_ctx": "big"}},
            500,
            'option "num_ctx" must be of type integer',
        ),
        (
            "/api/generate",
            {"model": "tiny", "prompt": "hi", "options": {"stop": "x"}},
            500,
            'option "stop" must be of type array',
        ),
        (
            "/api/generate",
            {"model": "tiny", "prompt": "hi", "options": {"stop": [1]}},
            500,
            'option "stop" must be of an array of strings',
        ),
        ("/api/generate", {"model": "tiny", "prompt": "hi", "keep_alive": "abc"}, 400, 'time: invalid duration "abc"'),
        (
            "/api/generate",
            {"model": "tiny", "prompt": "hi", "keep_alive": "10"},
            400,
            'time: missing unit in duration "10"',
        ),
        ("/api/generate", {"model": "tiny", "prompt": "hi", "keep_alive": True}, 400, "Unsupported type: 'bool'"),
        (
            "/api/generate",
            {"model": "tiny", "prompt": "hi", "think": "extreme"},
            400,
            'invalid think value: "extreme" (must be "high", "medium", "low", "max", true, or false)',
        ),
        (
            "/api/generate",
            {"model": "tiny", "prompt": "hi", "top_logprobs": 21},
            400,
            "top_logprobs must be between 0 and 20",
        ),
        ("/api/generate", {"model": "bad name!", "prompt": "hi"}, 400, "invalid model name"),
        ("/api/chat", {"model": "bad name!", "messages": []}, 400, "invalid model name"),
        (
            "/api/generate",
            {"model": "tiny", "prompt": "a", "suffix": "b"},
            400,
            "registry.ollama.ai/library/tiny:latest does not support insert",
        ),
        (
            "/api/generate",
            {"model": "tiny", "prompt": "hi", "images": ["aGVsbG8="]},
            400,
            "this model is missing data required for image input",
        ),
        (
            "/api/generate",
            {"model": "tiny", "prompt": "hi", "images": ["not base64!"]},
            400,
            "illegal base64 data at input byte 3",
        ),
        (
            "/api/chat",
            {"model": "tiny", "messages": [{"role": "user", "content": 2}]},
            400,
            "json: cannot unmarshal number into Go struct field Alias.content of type string",
        ),
        (
            "/api/chat",
            {"model": "tiny", "messages": "hi"},
            400,
            "json: cannot unmarshal string into Go struct field ChatRequest.messages of type []api.Message",
        ),
        ("/api/generate", {"model": "tiny", "prompt": "hi", "template": '{{ template "x" }}'}, 500, None),
        (
            "/api/generate",
            {"model": "tiny", "prompt": "hi", "template": "{{ .Prompt"},
            500,
            "template: :1: unclosed action",
        ),
    ],
)
def test_error_statuses_and_texts(server: Any, path: str, body: dict[str, Any], status: int, error: str | None) -> None:
    resp = post(server, path, body)
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/json; charset=utf-8"
    assert list(resp.json()) == ["error"]
    if error is not None:
        assert resp.json()["error"] == error


def test_wrong_method_and_unknown_route(server: Any) -> None:
    resp = httpx.get(server.url + "/api/chat")
    assert (resp.status_code, resp.headers["allow"], resp.text) == (405, "POST", "405 method not allowed")
    resp = httpx.post(server.url + "/api/nothing-here")
    assert (resp.status_code, resp.text) == (404, "404 page not found")


def test_format_is_never_silently_ignored(server: Any) -> None:
    body = {"model": "qwen-tiny", "prompt": "hi", "format": "json", "stream": False, "think": False}
    resp = post(server, "/api/generate", {**body, "options": {"temperature": 0, "num_predict": 64}})
    assert resp.status_code == 200 and isinstance(json.loads(resp.json()["response"]), dict)
    resp = post(
        server,
        "/api/generate",
        {"model": "qwen-tiny", "prompt": "hi", "format": "", "stream": False, "think": False, "options": GREEDY},
    )
    assert resp.status_code == 200  # LangChain's OllamaLLM sends format:"" meaning none


def test_load_and_unload_requests(server: Any) -> None:
    for path, body in (("/api/generate", {"model": "qwen-tiny"}), ("/api/chat", {"model": "qwen-tiny"})):
        resp = post(server, path, body)
        assert resp.status_code == 200 and resp.json()["done_reason"] == "load"
        assert "total_duration" not in resp.json()
    resp = post(server, "/api/chat", {"model": "qwen-tiny", "messages": [], "keep_alive": 0})
    assert resp.json() == {
        **resp.json(),
        "done": True,
        "done_reason": "unload",
        "message": {"role": "assistant", "content": ""},
    }


def test_case_insensitive_name_is_echoed(server: Any) -> None:
    resp = post(
        server,
        "/api/generate",
        {"model": "QWEN-TINY", "prompt": "hi", "stream": False, "think": False, "options": GREEDY},
    )
    assert resp.status_code == 200 and resp.json()["model"] == "QWEN-TINY"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z", resp.json()["created_at"])


def test_raw_has_no_context_and_context_continues(server: Any) -> None:
    raw = post(
        server,
        "/api/generate",
        {"model": "qwen-tiny", "prompt": "The sky is", "raw": True, "stream": False, "options": GREEDY},
    ).json()
    assert "context" not in raw and raw["done"]
    first = post(
        server,
        "/api/generate",
        {"model": "qwen-tiny", "prompt": "Hello!", "stream": False, "think": False, "options": GREEDY},
    ).json()
    follow = post(
        server,
        "/api/generate",
        {
            "model": "qwen-tiny",
            "prompt": "And you?",
            "stream": False,
            "think": False,
            "context": first["context"],
            "options": GREEDY,
        },
    ).json()
    assert follow["prompt_eval_count"] > len(first["context"])
    assert follow["context"][: len(first["context"])] == first["context"]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("token", [-1, 10**6])
def test_context_from_another_vocabulary_is_a_clear_400(server: Any, token: int, stream: bool) -> None:
    body = {"model": "qwen-tiny", "prompt": "Hi", "context": [9, token], "stream": stream, "options": GREEDY}
    resp = post(server, "/api/generate", body)
    assert resp.status_code == 400
    assert resp.json() == {"error": f"invalid context: token {token} is not in the model's vocabulary"}
    assert post(server, "/api/generate", {**body, "context": [9]}).status_code == 200  # and it keeps serving


def test_request_template_override(server: Any) -> None:
    resp = post(
        server,
        "/api/generate",
        {
            "model": "qwen-tiny",
            "prompt": "Hello",
            "stream": False,
            "think": False,
            "template": "<|im_start|>user\n{{ .Prompt }}<|im_end|>\n<|im_start|>assistant\n",
            "options": GREEDY,
        },
    )
    assert resp.status_code == 200
    # The Go template renders exactly this prompt, so the count is that prompt's token count.
    plain = post(
        server,
        "/api/generate",
        {
            "model": "qwen-tiny",
            "raw": True,
            "stream": False,
            "options": GREEDY,
            "prompt": "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n",
        },
    )
    assert resp.json()["prompt_eval_count"] == plain.json()["prompt_eval_count"]


def test_long_history_is_truncated_to_num_ctx(server: Any) -> None:
    history = []
    for i in range(30):
        history += [
            {"role": "user", "content": f"Question number {i} about the weather?"},
            {"role": "assistant", "content": f"Answer number {i}: it is sunny."},
        ]
    messages = [{"role": "system", "content": "Be brief."}, *history, {"role": "user", "content": "Hi"}]
    resp = post(
        server,
        "/api/chat",
        {
            "model": "qwen-tiny",
            "messages": messages,
            "stream": False,
            "think": False,
            "options": {**GREEDY, "num_ctx": 128},
        },
    )
    assert resp.status_code == 200
    assert resp.json()["prompt_eval_count"] <= 128


def test_stream_framing(server: Any) -> None:
    with httpx.stream(
        "POST",
        server.url + "/api/chat",
        json={"model": "qwen-tiny", "think": False, "options": GREEDY, "messages": [{"role": "user", "content": "Hi"}]},
        timeout=120,
    ) as resp:
        assert resp.headers["content-type"] == "application/x-ndjson"
        body = resp.read()
    lines = body.split(b"\n")
    assert lines[-1] == b"" and all(lines[:-1])
    assert all(b": " not in line and b", " not in line.split(b'"content"')[0] for line in lines[:-1])


# Sampling hot enough that the trained tiny model's end-of-turn token is one choice among two thousand: with a
# fixed seed the generation is long and the same every time.
LONG_RUN = {"temperature": 10, "top_k": 0, "top_p": 1.0, "seed": 3}


def test_disconnect_cancels_generation(server: Any) -> None:
    log = server.home / "server.log"
    before = log.read_text().count("generation cancelled")
    probe = {"model": "qwen-tiny", "prompt": "Go on.", "raw": True, "stream": False,
             "options": {**LONG_RUN, "num_predict": 64}}  # fmt: skip
    assert post(server, "/api/generate", probe).json()["eval_count"] == 64
    body = {**probe, "stream": True, "options": {**LONG_RUN, "num_predict": 100000}}
    with httpx.stream("POST", server.url + "/api/generate", json=body, timeout=120) as resp:
        lines = resp.iter_lines()
        for _ in range(3):
            next(lines)
    deadline = time.monotonic() + 10
    while log.read_text().count("generation cancelled") == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert log.read_text().count("generation cancelled") == before + 1
    body = {"model": "qwen-tiny", "prompt": "hi", "stream": False, "think": False, "options": GREEDY}
    assert post(server, "/api/generate", body, timeout=30).status_code == 200


def test_concurrent_requests_are_all_answered(server: Any) -> None:
    import concurrent.futures

    def one(i: int) -> dict[str, Any]:
        body = {"model": "qwen-tiny", "prompt": f"Question {i}?", "stream": False, "think": False, "options": GREEDY}
        return post(server, "/api/generate", body).json()

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        results = list(pool.map(one, range(6)))
    assert all(r["done"] and r["response"] for r in results)
    # Each answer is what the same request gets alone: queued requests do not disturb each other.
    assert results[2]["response"] == one(2)["response"]


def test_copy_and_delete(server: Any, tiny_model_dir: Any) -> None:
    def tags() -> dict[str, Any]:
        return {m["name"]: m for m in httpx.get(server.url + "/api/tags").json()["models"]}

    assert post(server, "/api/copy", {"source": "qwen-tiny", "destination": "Copied:v1"}).status_code == 200
    assert tags()["Copied:v1"]["digest"] == tags()["qwen-tiny:latest"]["digest"]
    for body, status, error in [
        ({"source": "", "destination": "y"}, 400, 'source "" is invalid'),
        ({"source": "qwen-tiny", "destination": "bad name!"}, 400, 'destination "bad name!" is invalid'),
        ({"source": "nope", "destination": "y"}, 404, 'model "nope" not found'),
    ]:
        resp = post(server, "/api/copy", body)
        assert (resp.status_code, resp.json()) == (status, {"error": error})
    gone = httpx.request("DELETE", server.url + "/api/delete", json={"name": "copied:V1"})  # legacy field, any case
    assert (gone.status_code, gone.content) == (200, b"")
    assert "Copied:v1" not in tags() and tiny_model_dir.is_dir()  # the weights are the user's: kept
    for body, status, error in [
        ({"model": "copied:v1"}, 404, "model 'copied:v1' not found"),
        ({}, 400, "model is required"),
        ({"model": "bad name!"}, 400, 'name "bad name!" is invalid'),
    ]:
        resp = httpx.request("DELETE", server.url + "/api/delete", json=body)
        assert (resp.status_code, resp.json()) == (status, {"error": error})


def test_ps_lists_loaded_models_with_true_numbers(server: Any) -> None:
    post(server, "/api/generate", {"model": "qwen-tiny", "keep_alive": 0})  # a fresh load: the default num_ctx
    post(server, "/api/generate", {"model": "qwen-tiny", "keep_alive": "10m"})
    entry = next(m for m in httpx.get(server.url + "/api/ps").json()["models"] if m["name"] == "qwen-tiny:latest")
    assert entry["size"] > 100_000 and entry["size_vram"] == 0  # the CPU backend: nothing in VRAM
    assert entry["context_length"] == 4096 and len(entry["digest"]) == 64
    expires = datetime.fromisoformat(entry["expires_at"])
    assert 9 * 60 < (expires - datetime.now(expires.tzinfo)).total_seconds() <= 10 * 60
    post(server, "/api/generate", {"model": "qwen-tiny", "keep_alive": -1})
    forever = next(m for m in httpx.get(server.url + "/api/ps").json()["models"] if m["name"] == "qwen-tiny:latest")
    assert int(forever["expires_at"][:4]) > 2200  # Ollama's "forever" is MaxInt64 ns from now
    post(server, "/api/generate", {"model": "qwen-tiny", "keep_alive": 0})
    assert "qwen-tiny:latest" not in {m["name"] for m in httpx.get(server.url + "/api/ps").json()["models"]}


def test_top_k_beyond_the_vocabulary_keeps_every_token_and_sampling_keeps_working(server: Any) -> None:
    """Ollama takes any top_k (the whole vocabulary or more keeps every token). mlx-lm's sampler raised on it
    mid-trace, which answered 500 and left MLX's random state broken: every later sampled request failed."""
    for options in ({"temperature": 1, "top_k": 100000}, {"temperature": 0.7}, {"temperature": 0.8, "top_k": 40}):
        body = {"model": "qwen-tiny", "prompt": "hello", "stream": False, "options": {**options, "num_predict": 5}}
        resp = post(server, "/api/generate", body)
        assert resp.status_code == 200, resp.text
        assert resp.json()["eval_count"] >= 1
