"""The official `openai` client, unchanged, against /v1 of the real server; raw httpx for framing and errors."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from tests.test_ollama_client import WEATHER_TOOL as WEATHER


@pytest.fixture(scope="module")
def client(server: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="ignored")


def test_chat_completion(client: openai.OpenAI) -> None:
    out = client.chat.completions.create(
        model="qwen-tiny", messages=[{"role": "user", "content": "Hello!"}], temperature=0, max_tokens=48
    )
    assert out.object == "chat.completion" and out.id.startswith("chatcmpl-")
    assert out.system_fingerprint == "fp_ollama"
    choice = out.choices[0]
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert out.usage and out.usage.total_tokens == out.usage.prompt_tokens + out.usage.completion_tokens


def test_chat_stream_with_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="qwen-tiny",
        messages=[{"role": "user", "content": "Hello!"}],
        temperature=0,
        max_tokens=48,
        stream=True,
        stream_options={"include_usage": True},
        reasoning_effort="none",  # type: ignore[arg-type]
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    finish = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finish) == 1 and finish[0].choices[0].delta.content == ""
    assert chunks[-1].choices == [] and chunks[-1].usage and chunks[-1].usage.completion_tokens > 0


def test_tool_calls_have_string_arguments(client: openai.OpenAI) -> None:
    out = client.chat.completions.create(
        model="qwen-tiny",
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER],  # type: ignore[list-item]
        temperature=0,
        reasoning_effort="none",  # type: ignore[arg-type]
    )
    choice = out.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]  # type: ignore[index]
    assert call.type == "function" and call.function.name == "get_weather"  # type: ignore[union-attr]
    assert isinstance(json.loads(call.function.arguments), dict)  # type: ignore[union-attr]
    # The tool result goes back by tool_call_id, and the model answers in text.
    follow = client.chat.completions.create(
        model="qwen-tiny",
        messages=[
            {"role": "user", "content": "What is the weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 22 C"},
        ],
        tools=[WEATHER],  # type: ignore[list-item]
        temperature=0,
        reasoning_effort="none",  # type: ignore[arg-type]
    )
    assert follow.choices[0].message.content and follow.choices[0].finish_reason == "stop"


def test_completions_and_models(client: openai.OpenAI) -> None:
    out = client.completions.create(model="qwen-tiny", prompt="Hello!", max_tokens=48, temperature=0)
    assert out.object == "text_completion" and isinstance(out.choices[0].text, str) and out.usage
    ids = {m.id for m in client.models.list()}
    assert {"tiny:latest", "qwen-tiny:latest"} <= ids
    assert client.models.retrieve("qwen-tiny").id == "qwen-tiny"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("does-not-exist")


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/v1/chat/completions", {"model": "qwen-tiny", "messages": []}, 400, "[] is too short - 'messages'"),
        ("/v1/chat/completions", {"model": "qwen-tiny", "messages": [{"role": "user", "content": 2}]}, 400,
         "invalid message content type: float64"),
        ("/v1/completions", {"model": "qwen-tiny", "prompt": "hi", "stop": [1]}, 400,
         "invalid type for 'stop' field: float64"),
        ("/v1/chat/completions", {"model": "nope", "messages": [{"role": "user", "content": "hi"}]}, 404,
         "model 'nope' not found"),
        ("/v1/chat/completions", {"model": "", "messages": [{"role": "user", "content": "hi"}]}, 400,
         "model is required"),
        ("/v1/chat/completions", {"model": "qwen-tiny", "reasoning_effort": "huge",
                                  "messages": [{"role": "user", "content": "hi"}]}, 400, None),
        ("/v1/chat/completions", {"model": "qwen-tiny", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]}, 400,
         "image URLs are not currently supported, please use base64 encoded data instead"),
    ],
)  # fmt: skip
def test_errors_in_openai_shape(server: Any, path: str, body: dict[str, Any], status: int, message: str | None) -> None:
    resp = httpx.post(server.url + path, json=body, timeout=60)
    assert resp.status_code == status and resp.headers["content-type"] == "application/json"
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["param"] is None and error["code"] is None
    assert error["type"] == {400: "invalid_request_error", 404: "not_found_error"}[status]
    if message is not None:
        assert error["message"] == message


def test_empty_model_list_is_null(tmp_path: Any) -> None:
    from tests.conftest import start_server, stop_server

    srv = start_server(tmp_path)
    try:
        assert httpx.get(srv.url + "/v1/models").json() == {"object": "list", "data": None}
    finally:
        stop_server(srv)
