"""Details of Ollama's HTTP behaviour found by the parity audit (PARITY-AUDIT.md), checked over raw HTTP
against the real server: methods and `Allow`, validation order, statuses of template errors, and the
/v1 layer's answers where it passes a native answer through."""

from __future__ import annotations

import json
from typing import Any

import httpx
import ollama
import pytest


@pytest.mark.parametrize("path", ["/api/ps", "/v1/models", "/v1/models/tiny"])
def test_get_only_routes_refuse_head(server: Any, path: str) -> None:
    """gin registers HEAD only where Ollama asks for it (/, /api/version, /api/tags)."""
    resp = httpx.head(server.url + path)
    assert (resp.status_code, resp.headers["allow"], resp.headers["content-type"]) == (405, "GET", "text/plain")
    assert resp.content == b""
    assert httpx.get(server.url + path).status_code == 200


@pytest.mark.parametrize("path", ["/", "/api/version", "/api/tags"])
def test_head_and_get_routes(server: Any, path: str) -> None:
    assert httpx.head(server.url + path).status_code == 200
    resp = httpx.post(server.url + path)
    # gin lists the other methods in the order its method trees were registered: HEAD first.
    assert (resp.status_code, resp.headers["allow"], resp.text) == (405, "HEAD, GET", "405 method not allowed")


def test_chat_checks_thinking_before_tools(server: Any) -> None:
    """ChatHandler refuses `think` before scheduling, where the tools capability is checked."""
    body = {
        "model": "tiny",
        "think": True,
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
    }
    resp = httpx.post(server.url + "/api/chat", json=body)
    assert (resp.status_code, resp.json()) == (400, {"error": '"tiny" does not support thinking'})
    body["think"] = False
    resp = httpx.post(server.url + "/api/chat", json=body)
    assert (resp.status_code, resp.json()) == (
        400,
        {"error": "registry.ollama.ai/library/tiny:latest does not support tools"},
    )


def test_v1_completions_without_prompt_loads_the_model(server: Any) -> None:
    """Ollama sends an empty prompt to GenerateHandler, whose load-only answer its /v1 writer converts."""
    httpx.post(server.url + "/api/generate", json={"model": "tiny", "keep_alive": 0})
    resp = httpx.post(server.url + "/v1/completions", json={"model": "tiny"}, timeout=120)
    assert (resp.status_code, resp.headers["content-type"]) == (200, "application/json")
    body = resp.json()
    assert body["id"].startswith("cmpl-") and isinstance(body["created"], int)
    assert body == {
        **body,
        "object": "text_completion",
        "model": "tiny",
        "system_fingerprint": "fp_ollama",
        "choices": [{"text": "", "index": 0, "finish_reason": "load"}],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }
    assert "tiny:latest" in [m["name"] for m in httpx.get(server.url + "/api/ps").json()["models"]]

    body = {"model": "tiny", "prompt": "", "stream": True, "stream_options": {"include_usage": True}}
    resp = httpx.post(server.url + "/v1/completions", json=body, timeout=120)
    assert (resp.status_code, resp.headers["content-type"]) == (200, "text/event-stream")
    frames = resp.text.removesuffix("\n\n").split("\n\n")
    assert frames[-1] == "data: [DONE]"
    finish, usage = (json.loads(f.removeprefix("data: ")) for f in frames[:-1])
    assert finish["choices"] == [{"text": "", "index": 0, "finish_reason": "load"}]
    assert usage["choices"] == [] and usage["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def test_v1_chat_whose_messages_convert_to_nothing_loads_the_model(server: Any) -> None:
    """`content: []` converts to no native message (openai.FromChatRequest appends one per part), so
    ChatHandler answers its load-only response, which Ollama's ChatWriter converts: finish reason "load"."""
    httpx.post(server.url + "/api/generate", json={"model": "tiny", "keep_alive": 0})
    body: dict[str, Any] = {"model": "tiny", "messages": [{"role": "user", "content": []}]}
    resp = httpx.post(server.url + "/v1/chat/completions", json=body, timeout=120)
    assert (resp.status_code, resp.headers["content-type"]) == (200, "application/json")
    out = resp.json()
    assert out["id"].startswith("chatcmpl-") and isinstance(out["created"], int)
    assert out == {
        **out,
        "object": "chat.completion",
        "model": "tiny",
        "system_fingerprint": "fp_ollama",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": ""}, "finish_reason": "load"}],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }
    assert "tiny:latest" in [m["name"] for m in httpx.get(server.url + "/api/ps").json()["models"]]

    body |= {"stream": True, "stream_options": {"include_usage": True}}
    resp = httpx.post(server.url + "/v1/chat/completions", json=body, timeout=120)
    assert (resp.status_code, resp.headers["content-type"]) == (200, "text/event-stream")
    frames = resp.text.removesuffix("\n\n").split("\n\n")
    assert frames[-1] == "data: [DONE]"
    finish, usage = (json.loads(f.removeprefix("data: ")) for f in frames[:-1])
    assert finish["object"] == "chat.completion.chunk"
    assert finish["choices"] == [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": "load"}]
    assert usage["choices"] == [] and usage["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}

    # The Anthropic route reaches the same load-only answer through its own writer.
    body = {"model": "tiny", "max_tokens": 8, "messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]}
    resp = httpx.post(server.url + "/v1/messages", json=body, timeout=120)
    assert resp.status_code == 200 and resp.json()["usage"] == {"input_tokens": 0, "output_tokens": 0}


def test_push_is_checked_as_ollama_and_fails_with_a_reason(server: Any) -> None:
    url = server.url + "/api/push"
    resp = httpx.post(url, content=b"")
    assert (resp.status_code, resp.json()) == (400, {"error": "missing request body"})
    resp = httpx.post(url, json={})
    assert (resp.status_code, resp.json()) == (400, {"error": "model is required"})

    resp = httpx.post(url, json={"model": "tiny"})
    assert (resp.status_code, resp.headers["content-type"]) == (200, "application/x-ndjson")
    lines = [json.loads(line) for line in resp.text.splitlines()]
    assert lines[0] == {"status": "retrieving manifest"} and list(lines[-1]) == ["error"]
    assert "cannot push" in lines[-1]["error"]

    resp = httpx.post(url, json={"name": "nope", "stream": False})
    assert (resp.status_code, resp.headers["content-type"]) == (500, "application/json")
    assert resp.json() == {"error": 'model "nope" not found'}

    client = ollama.Client(host=server.url)
    with pytest.raises(ollama.ResponseError, match="cannot push"):
        for progress in client.push("tiny", stream=True):
            assert progress.status == "retrieving manifest"
    with pytest.raises(ollama.ResponseError, match="cannot push") as caught:
        client.push("tiny", stream=False)
    assert caught.value.status_code == 500


def test_images_in_chat_for_a_model_without_vision(server: Any) -> None:
    """Ollama's runner text, which clients match to tell the user to pick a vision model (generate's
    case is in test_http_api)."""
    body = {"model": "tiny", "messages": [{"role": "user", "content": "what?", "images": ["aGk="]}]}
    resp = httpx.post(server.url + "/api/chat", json=body, timeout=120)
    assert (resp.status_code, resp.json()) == (400, {"error": "this model is missing data required for image input"})


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (
            "/v1/chat/completions",
            {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "stream": "yes"},
            "json: cannot unmarshal string into Go struct field ChatCompletionRequest.stream of type bool",
        ),
        (
            "/v1/chat/completions",
            {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": "5"},
            "json: cannot unmarshal string into Go struct field ChatCompletionRequest.max_tokens of type int",
        ),
        (
            "/v1/chat/completions",
            {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1.5},
            "json: cannot unmarshal number 1.5 into Go struct field ChatCompletionRequest.max_tokens of type int",
        ),
        (
            "/v1/chat/completions",
            {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "temperature": "hot"},
            "json: cannot unmarshal string into Go struct field ChatCompletionRequest.temperature of type float64",
        ),
        (
            "/v1/chat/completions",
            {"model": "tiny", "messages": {"role": "user"}},
            "json: cannot unmarshal object into Go struct field ChatCompletionRequest.messages of type "
            "[]openai.Message",
        ),
        (
            "/v1/chat/completions",
            {"model": "tiny", "messages": [{"role": 1, "content": "hi"}]},
            "json: cannot unmarshal number into Go struct field Message.messages.role of type string",
        ),
        (
            "/v1/chat/completions",
            {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "stream_options": {"include_usage": 1}},
            "json: cannot unmarshal number into Go struct field StreamOptions.stream_options.include_usage "
            "of type bool",
        ),
        ("/v1/chat/completions", [], "json: cannot unmarshal array into Go value of type openai.ChatCompletionRequest"),
        (
            "/v1/chat/completions",
            {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "response_format": "json"},
            "json: cannot unmarshal string into Go struct field ChatCompletionRequest.response_format of type "
            "openai.ResponseFormat",
        ),
        (
            "/v1/chat/completions",
            {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "tools": ["f"]},
            "json: cannot unmarshal string into Go struct field ChatCompletionRequest.tools of type api.Tool",
        ),
        ("/v1/chat/completions", None, "[] is too short - 'messages'"),
        (
            "/v1/completions",
            {"model": "tiny", "prompt": ["a", "b"]},
            "json: cannot unmarshal array into Go struct field CompletionRequest.prompt of type string",
        ),
        (
            "/v1/completions",
            {"model": "tiny", "prompt": "hi", "temperature": "warm"},
            "json: cannot unmarshal string into Go struct field CompletionRequest.temperature of type float32",
        ),
    ],
)
def test_v1_bodies_bind_with_go_type_errors(server: Any, path: str, body: Any, message: str) -> None:
    """Ollama's /v1 middleware binds the body to its openai structs before converting it."""
    resp = httpx.post(server.url + path, content=json.dumps(body), timeout=60)
    assert (resp.status_code, resp.headers["content-type"]) == (400, "application/json")
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": None}
    assert resp.json() == {"error": error}


def test_v1_roles_are_lowercased(server: Any) -> None:
    """The converted request is bound as an api.ChatRequest, whose messages lowercase their role: an
    upper-case role renders exactly as the lower-case one."""
    answers = []
    for role in ("user", "USER"):
        body = {"model": "tiny", "messages": [{"role": role, "content": "Hi"}], "temperature": 0, "max_tokens": 4}
        resp = httpx.post(server.url + "/v1/chat/completions", json=body, timeout=120)
        assert resp.status_code == 200, resp.text
        answers.append((resp.json()["choices"][0]["message"]["content"], resp.json()["usage"]))
    assert answers[0] == answers[1]


def test_no_server_header(server: Any) -> None:
    """Go's net/http names no server; the headers Ollama sends are the content type, length and date."""
    resp = httpx.get(server.url + "/api/version")
    assert "server" not in resp.headers and "date" in resp.headers


def test_delete_of_a_blank_name_asks_for_a_model(server: Any) -> None:
    resp = httpx.request("DELETE", server.url + "/api/delete", json={"model": "  "})
    assert (resp.status_code, resp.json()) == (400, {"error": "model is required"})


@pytest.mark.parametrize("min_p", [-1, 0, 1, 2.5])
def test_min_p_out_of_range_samples_as_ollama(server: Any, min_p: float) -> None:
    """Ollama's sampler applies min_p only when it is above 0; it never refuses the value."""
    options = {"min_p": min_p, "num_predict": 3, "seed": 1}
    resp = httpx.post(
        server.url + "/api/generate",
        json={"model": "tiny", "prompt": "hi", "stream": False, "options": options},
        timeout=120,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["eval_count"] == 3
