"""`POST /v1/messages` (Ollama's Anthropic compatibility) through the real server and real MLX generation,
driven by the official `anthropic` SDK and raw httpx for the exact bytes: SSE framing, event order and
every error layout, as Ollama's anthropic middleware writes them.
"""

from __future__ import annotations

import json
import re
from typing import Any

import anthropic
import httpx
import pytest

from scripts.tiny_model import corpus

JOKE = next(i for i in corpus.INTENTS if i.name == "joke")
ASK = [{"role": "user", "content": "tell me a joke"}]
WEATHER_ASK = [{"role": "user", "content": "What's the weather in Paris?"}]
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Get the current weather for a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
GREEDY: dict[str, Any] = {"model": "qwen-tiny", "max_tokens": 64, "temperature": 0}
SDK: dict[str, Any] = {"model": "qwen-tiny", "max_tokens": 64, "extra_body": {"temperature": 0}}  # the SDK has no
# `temperature` argument any more: it travels as Claude Code's does, in the body
MSG_ID = re.compile(r"msg_[0-9a-f]{24}")
REQ_ID = re.compile(r"req_[0-9a-f]{24}")
CALL_ID = re.compile(r"call_[a-z0-9]{8}")


@pytest.fixture(scope="module")
def client(server: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key="ollama", max_retries=0)


def post(server: Any, body: Any, **kwargs: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(server.url + "/v1/messages", content=content, timeout=120, **kwargs)


def native_chat(server: Any, messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    body = {
        "model": "qwen-tiny",
        "messages": messages,
        "stream": False,
        "options": {"temperature": 0, "num_predict": 64},
    }
    return httpx.post(server.url + "/api/chat", json={**body, **extra}, timeout=120).json()


def sse(resp: httpx.Response) -> list[tuple[str, dict[str, Any]]]:
    """Events as framed by Ollama's writeSSE: `event: NAME\\ndata: JSON\\n\\n`, nothing else."""
    text = resp.text
    assert text.endswith("\n\n")
    events = []
    for frame in text[:-2].split("\n\n"):
        name_line, data_line = frame.split("\n")
        assert name_line.startswith("event: ") and data_line.startswith("data: ")
        data = json.loads(data_line[len("data: ") :])
        assert data["type"] == name_line[len("event: ") :]
        events.append((data["type"], data))
    return events


# ---------------------------------------------------------------------------------------------------
# The official SDK


def test_create_answers_thinking_then_text_with_true_usage(client: anthropic.Anthropic, server: Any) -> None:
    reply = client.messages.create(messages=ASK, **SDK)  # type: ignore[arg-type]
    assert MSG_ID.fullmatch(reply.id) and reply.type == "message" and reply.role == "assistant"
    assert reply.model == "qwen-tiny" and reply.stop_reason == "end_turn" and reply.stop_sequence is None
    thinking, text = reply.content
    assert thinking.type == "thinking" and thinking.thinking == JOKE.think
    assert text.type == "text" and text.text == JOKE.answer
    native = native_chat(server, ASK)  # same prompt, same tokens: the numbers are the engine's own
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (native["prompt_eval_count"], native["eval_count"])


def test_thinking_disabled_and_enabled(client: anthropic.Anthropic) -> None:
    off = client.messages.create(messages=ASK, thinking={"type": "disabled"}, **SDK)  # type: ignore[arg-type]
    assert [b.type for b in off.content] == ["text"] and off.content[0].text == JOKE.answer  # type: ignore[union-attr]
    on = client.messages.create(
        messages=ASK,
        thinking={"type": "enabled", "budget_tokens": 1024},
        **SDK,  # type: ignore[arg-type]
    )
    assert [b.type for b in on.content] == ["thinking", "text"]


def test_stream_text_and_final_message(client: anthropic.Anthropic) -> None:
    with client.messages.stream(messages=ASK, **SDK) as stream:  # type: ignore[arg-type]
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == JOKE.answer
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == JOKE.think and final.content[1].text == JOKE.answer  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0


@pytest.mark.parametrize("think", [False, True])
@pytest.mark.parametrize("stream", [False, True])
def test_tool_use_round_trip(client: anthropic.Anthropic, stream: bool, think: bool) -> None:
    """call -> tool_result by tool_use_id -> answer, the way Claude Code loops (thinking blocks sent back)."""
    ask = {**SDK, "tools": [WEATHER_TOOL], "thinking": {"type": "enabled", "budget_tokens": 1024} if think else
           {"type": "disabled"}}  # fmt: skip
    if stream:
        with client.messages.stream(messages=WEATHER_ASK, **ask) as s:  # type: ignore[arg-type]
            first = s.get_final_message()
    else:
        first = client.messages.create(messages=WEATHER_ASK, **ask)  # type: ignore[arg-type]
    assert first.stop_reason == "tool_use"
    *thought, call = first.content
    assert [b.thinking for b in thought] == ([corpus.TOOL_THINK] if think else [])  # type: ignore[union-attr]
    assert call.type == "tool_use" and call.name == "get_weather" and call.input == {"city": "Paris"}
    assert CALL_ID.fullmatch(call.id)
    history = [
        *WEATHER_ASK,
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "Sunny, 22 C"}]},
    ]
    answer = client.messages.create(messages=history, **ask)  # type: ignore[arg-type]
    assert [b.type for b in answer.content] == ["thinking", "text"][not think :] and answer.stop_reason == "end_turn"
    assert answer.content[-1].text == corpus.RESULT_ANSWER  # type: ignore[union-attr]


def test_tool_result_blocks_reach_the_prompt_like_native_tool_messages(server: Any) -> None:
    """A tool_result with text blocks is the native `tool` message with the texts joined."""
    call = {"id": "call_abcd1234", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    native = native_chat(
        server,
        [*WEATHER_ASK, {"role": "assistant", "content": "", "tool_calls": [call]},
         {"role": "tool", "content": "Sunny, 22 C", "tool_call_id": "call_abcd1234"}],
        tools=[{"type": "function", "function": {"name": "get_weather", "description": WEATHER_TOOL["description"],
                                                 "parameters": WEATHER_TOOL["input_schema"]}}],
        think=False,
    )  # fmt: skip
    texts = [{"type": "text", "text": "Sunny, "}, {"type": "text", "text": "22 C"}]
    history = [
        *WEATHER_ASK,
        {"role": "assistant", "content": [{"type": "tool_use", "id": "call_abcd1234", "name": "get_weather",
                                           "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_abcd1234", "content": texts}]},
    ]  # fmt: skip
    body = {**GREEDY, "messages": history, "tools": [WEATHER_TOOL], "thinking": {"type": "disabled"}}
    reply = post(server, body)
    answer = reply.json()
    assert answer["content"] == [{"type": "text", "text": native["message"]["content"]}]
    assert answer["usage"] == {"input_tokens": native["prompt_eval_count"], "output_tokens": native["eval_count"]}


def test_stop_sequences_and_max_tokens(client: anthropic.Anthropic) -> None:
    word = JOKE.answer.split()[2]
    stopped = client.messages.create(messages=ASK, stop_sequences=[word], thinking={"type": "disabled"}, **SDK)  # type: ignore[arg-type]
    assert stopped.content[0].text == JOKE.answer[: JOKE.answer.index(word)]  # type: ignore[union-attr]
    assert stopped.stop_reason == "end_turn"  # Ollama's done_reason is "stop" for a stop sequence too
    short = client.messages.create(messages=ASK, **{**SDK, "max_tokens": 3})  # type: ignore[arg-type]
    assert short.stop_reason == "max_tokens" and short.usage.output_tokens == 3


def test_system_as_string_or_blocks(client: anthropic.Anthropic) -> None:
    system = "You are a helpful assistant."
    plain = client.messages.create(messages=ASK, system=system, **{**SDK, "max_tokens": 1})  # type: ignore[arg-type]
    blocks = [{"type": "text", "text": "You are a helpful "}, {"type": "text", "text": "assistant."}]
    joined = client.messages.create(messages=ASK, system=blocks, **{**SDK, "max_tokens": 1})  # type: ignore[arg-type]
    bare = client.messages.create(messages=ASK, **{**SDK, "max_tokens": 1})  # type: ignore[arg-type]
    assert plain.usage.input_tokens == joined.usage.input_tokens > bare.usage.input_tokens


def test_sdk_raises_typed_errors(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.messages.create(model="does-not-exist", max_tokens=8, messages=ASK)  # type: ignore[arg-type]
    assert missing.value.body == {
        "type": "error",
        "error": {"type": "not_found_error", "message": "model 'does-not-exist' not found"},
        "request_id": missing.value.body["request_id"],  # type: ignore[index]
    }
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model="qwen-tiny", max_tokens=0, messages=ASK)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------
# Exact bytes


def test_nonstreaming_bytes(server: Any) -> None:
    resp = post(server, {**GREEDY, "messages": ASK})
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
    assert resp.text.endswith("}\n") and "\n" not in resp.text[:-1]
    body = resp.json()
    assert list(body) == ["id", "type", "role", "model", "content", "stop_reason", "usage"]  # Go's field order
    assert body["content"] == [{"type": "thinking", "thinking": JOKE.think}, {"type": "text", "text": JOKE.answer}]


def test_stream_events_in_ollamas_order(server: Any) -> None:
    resp = post(server, {**GREEDY, "messages": ASK, "stream": True})
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "text/event-stream" and resp.headers["cache-control"] == "no-cache"
    events = sse(resp)
    names = [n for n, _ in events]
    start, *_ = events
    assert MSG_ID.fullmatch(start[1]["message"]["id"])
    # Ollama's estimate until the real count is known (bytes of role and text over four); message_delta has it
    assert start[1]["message"]["usage"]["input_tokens"] == len("user" + ASK[0]["content"]) // 4
    assert start[1] == {"type": "message_start", "message": {
        "id": start[1]["message"]["id"], "type": "message", "role": "assistant", "model": "qwen-tiny", "content": [],
        "usage": {"input_tokens": start[1]["message"]["usage"]["input_tokens"], "output_tokens": 0}}}  # fmt: skip
    thinking_deltas = names.count("content_block_delta")
    assert names[:2] == ["message_start", "content_block_start"] and thinking_deltas > 2
    assert "ping" not in names  # Ollama sends none
    assert events[1][1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "thinking", "thinking": ""},
    }
    stops = [d for n, d in events if n == "content_block_stop"]
    assert stops == [{"type": "content_block_stop", "index": 0}, {"type": "content_block_stop", "index": 1}]
    text_start = next(d for n, d in events if n == "content_block_start" and d["index"] == 1)
    assert text_start["content_block"] == {"type": "text", "text": ""}
    deltas = [d for n, d in events if n == "content_block_delta"]
    assert "".join(d["delta"]["thinking"] for d in deltas if d["index"] == 0) == JOKE.think
    assert "".join(d["delta"]["text"] for d in deltas if d["index"] == 1) == JOKE.answer
    assert {d["delta"]["type"] for d in deltas} == {"thinking_delta", "text_delta"}
    assert names[-2:] == ["message_delta", "message_stop"] and events[-1][1] == {"type": "message_stop"}
    native = native_chat(server, ASK)
    usage = {"input_tokens": native["prompt_eval_count"], "output_tokens": native["eval_count"]}
    assert events[-2][1] == {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": usage}


def test_stream_tool_use_block(server: Any) -> None:
    body = {
        **GREEDY,
        "messages": WEATHER_ASK,
        "tools": [WEATHER_TOOL],
        "stream": True,
        "thinking": {"type": "disabled"},
    }
    events = sse(post(server, body))
    assert [n for n, _ in events] == ["message_start", "content_block_start", "content_block_delta",
                                      "content_block_stop", "message_delta", "message_stop"]  # fmt: skip
    block = events[1][1]["content_block"]
    assert CALL_ID.fullmatch(block["id"])
    assert block == {"type": "tool_use", "id": block["id"], "name": "get_weather", "input": {}}
    assert events[2][1]["delta"] == {"type": "input_json_delta", "partial_json": '{"city":"Paris"}'}
    assert events[4][1]["delta"] == {"stop_reason": "tool_use"}


def test_a_model_without_thinking_is_relaxed_not_refused(server: Any) -> None:
    """Ollama relaxes `thinking` for /v1/messages so Claude Code works with any model (`tiny` cannot think)."""
    body = {"model": "tiny", "max_tokens": 4, "messages": ASK, "thinking": {"type": "enabled", "budget_tokens": 10}}
    resp = post(server, body)
    assert resp.status_code == 200 and all(b["type"] == "text" for b in resp.json()["content"] or [])
    native = httpx.post(server.url + "/api/chat", json={"model": "tiny", "messages": ASK, "think": True}, timeout=60)
    assert native.status_code == 400 and native.json() == {"error": '"tiny" does not support thinking'}


def test_messages_that_convert_to_nothing_only_load(server: Any) -> None:
    """An empty text is dropped by Ollama's conversion; with no messages left the chat handler only loads,
    and the writer maps done_reason "load" to stop_sequence, with no content (Go's null)."""
    for stream in (False, True):
        resp = post(server, {**GREEDY, "messages": [{"role": "user", "content": ""}], "stream": stream})
        assert resp.status_code == 200
        if not stream:
            body = resp.json()
            assert body["content"] is None and body["stop_reason"] == "stop_sequence"
            assert body["usage"] == {"input_tokens": 0, "output_tokens": 0}
        else:
            names = [n for n, _ in sse(resp)]
            assert names == ["message_start", "message_delta", "message_stop"]


# ---------------------------------------------------------------------------------------------------
# Errors


def refused(resp: httpx.Response, status: int, message: str, kind: str = "invalid_request_error") -> None:
    """The middleware's refusals: gin's AbortWithStatusJSON (charset, no newline)."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/json; charset=utf-8" and not resp.text.endswith("\n")
    body = resp.json()
    assert REQ_ID.fullmatch(body.pop("request_id"))
    assert body == {"type": "error", "error": {"type": kind, "message": message}}


def handler_error(resp: httpx.Response, status: int, message: str, kind: str) -> None:
    """The chat handler's errors as the AnthropicWriter re-encodes them (no charset, newline)."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/json" and resp.text.endswith("}\n")
    body = resp.json()
    assert list(body) == ["type", "error", "request_id"] and REQ_ID.fullmatch(body["request_id"])
    assert body["error"] == {"type": kind, "message": message}


OK = {"model": "qwen-tiny", "max_tokens": 8, "messages": ASK}


def said(role: str, *blocks: dict[str, Any]) -> dict[str, Any]:
    return {**OK, "messages": [{"role": role, "content": list(blocks)}]}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "EOF"),
        (b"{bad", "invalid character 'b' looking for beginning of object key string"),
        (b"[]", "json: cannot unmarshal array into Go value of type anthropic.MessagesRequest"),
        ({"max_tokens": 8, "messages": ASK}, "model is required"),
        ({"model": "qwen-tiny", "messages": ASK}, "max_tokens is required and must be positive"),
        ({**OK, "max_tokens": -1}, "max_tokens is required and must be positive"),
        ({**OK, "messages": []}, "messages is required"),
        ({**OK, "max_tokens": "8"},
         "json: cannot unmarshal string into Go struct field MessagesRequest.max_tokens of type int"),
        ({**OK, "temperature": "hot"},
         "json: cannot unmarshal string into Go struct field MessagesRequest.temperature of type float64"),
        ({**OK, "stop_sequences": "x"},
         "json: cannot unmarshal string into Go struct field MessagesRequest.stop_sequences of type []string"),
        ({**OK, "thinking": {"type": "enabled", "budget_tokens": "many"}},
         "json: cannot unmarshal string into Go struct field ThinkingConfig.thinking.budget_tokens of type int"),
        ({**OK, "messages": [{"role": "user"}]}, "unexpected end of JSON input"),
        ({**OK, "messages": [None]}, "unexpected end of JSON input"),
        (said("user", {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "image", "source": "x"}]}),
         "invalid tool_result image source"),
        ({**OK, "messages": ["hi"]},
         "json: cannot unmarshal string into Go struct field MessagesRequest.messages of type "
         'struct { Role string "json:\\"role\\""; Content json.RawMessage "json:\\"content\\"" }'),
        ({**OK, "tools": [{"name": "f", "input_schema": "x"}]},
         'invalid input_schema for tool "f": json: cannot unmarshal string into Go value of type '
         "api.ToolFunctionParameters"),
        ({**OK, "tools": [{"name": "f", "input_schema": {"type": 1}}]},
         'invalid input_schema for tool "f": json: cannot unmarshal number into Go struct field '
         "ToolFunctionParameters.type of type string"),
        ({**OK, "tools": [{"name": 1}]},
         "json: cannot unmarshal number into Go struct field Tool.tools.name of type string"),
        ({**OK, "messages": [{"role": "user", "content": 5}]},
         "json: cannot unmarshal number into Go struct field MessagesRequest.messages of type "
         "[]anthropic.ContentBlock"),
        (said("user", {"type": "text", "text": 5}),
         "json: cannot unmarshal number into Go struct field MessagesRequest.messages of type string"),
        (said("user", {"type": "image", "source": {"type": "url", "url": "http://x"}}),
         "invalid image source type: url. Only base64 images are supported."),
        (said("user", {"type": "image", "source": {"type": "base64", "data": "@@"}}),
         "invalid base64 image data: illegal base64 data at input byte 0"),
        (said("user", {"type": "image"}), "invalid image source"),
        (said("assistant", {"type": "tool_use", "name": "f", "input": {}}),
         "tool_use block missing required 'id' field"),
        (said("assistant", {"type": "tool_use", "id": "t1", "input": {}}),
         "tool_use block missing required 'name' field"),
    ],
)  # fmt: skip
def test_middleware_refusals(server: Any, body: Any, message: str) -> None:
    refused(post(server, body), 400, message)


def test_handler_errors(server: Any) -> None:
    handler_error(post(server, {**OK, "model": "nope"}), 404, "model 'nope' not found", "not_found_error")
    stream = post(server, {**OK, "model": "nope", "stream": True})  # refused before any event: plain JSON
    handler_error(stream, 404, "model 'nope' not found", "not_found_error")
    assert stream.headers["cache-control"] == "no-cache"  # the middleware's SSE headers stay, bar the type
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "aGVsbG8="}}
    vision = post(server, {**OK, "messages": [{"role": "user", "content": [image, {"type": "text", "text": "?"}]}]})
    handler_error(vision, 400, "this model is missing data required for image input", "invalid_request_error")
    result = {"type": "tool_result", "tool_use_id": "t1", "content": [image]}
    tool_image = post(server, {**OK, "messages": [{"role": "user", "content": [result]}]})
    handler_error(tool_image, 400, "this model is missing data required for image input", "invalid_request_error")
    tools = post(server, {**OK, "model": "tiny", "tools": [WEATHER_TOOL]})
    handler_error(tools, 400, "registry.ollama.ai/library/tiny:latest does not support tools", "invalid_request_error")


def test_other_methods_and_paths_are_gins(server: Any) -> None:
    assert httpx.get(server.url + "/v1/messages").status_code == 405
    missing = httpx.post(server.url + "/v1/messages/count_tokens", json=OK)  # Ollama has no such route
    assert missing.status_code == 404 and missing.text == "404 page not found"


def test_message_start_estimate_counts_blocks_as_go_reencodes_them(server: Any) -> None:
    """anthropic.EstimateInputTokens: role and text bytes, tool blocks as Go re-encodes them, tools' name,
    description and schema, all over four."""
    history = [
        *WEATHER_ASK,
        {"role": "assistant", "content": [{"input": {"city": "Paris"}, "name": "get_weather", "type": "tool_use",
                                           "id": "call_abcd1234"}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_abcd1234", "content": "Sunny, 22 C",
                                      "is_error": False}]},
    ]  # fmt: skip
    body = {**GREEDY, "max_tokens": 8, "messages": history, "tools": [WEATHER_TOOL], "stream": True}
    events = sse(post(server, body))
    start = events[0][1]
    assert events[1][1]["content_block"]["type"] == "thinking"  # a piece came first: the count was not known yet
    size = len("user" + WEATHER_ASK[0]["content"])
    size += len("assistant" + '{"type":"tool_use","id":"call_abcd1234","name":"get_weather","input":{"city":"Paris"}}')
    size += len("user" + '{"type":"tool_result","tool_use_id":"call_abcd1234","content":"Sunny, 22 C"}')
    schema = '{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}'
    size += len("get_weather" + WEATHER_TOOL["description"] + schema)
    assert start["message"]["usage"]["input_tokens"] == size // 4
    assert events[-2][1]["usage"]["input_tokens"] > size // 4  # the true count, from the engine


def test_message_start_has_the_true_count_when_the_answer_ends_first(server: Any) -> None:
    """One token, the `<think>` marker, shows nothing: the first chunk is the final one, whose real prompt
    count Ollama's converter uses instead of its estimate."""
    events = sse(post(server, {**GREEDY, "max_tokens": 1, "messages": ASK, "stream": True}))
    assert [n for n, _ in events] == ["message_start", "message_delta", "message_stop"]
    native = native_chat(server, ASK)
    assert (
        events[0][1]["message"]["usage"]["input_tokens"] == native["prompt_eval_count"] > len("usertell me a joke") // 4
    )
    assert events[1][1] == {"type": "message_delta", "delta": {"stop_reason": "max_tokens"},
                            "usage": {"input_tokens": native["prompt_eval_count"], "output_tokens": 1}}  # fmt: skip


def test_a_claude_code_shaped_request(server: Any) -> None:
    """What Claude Code sends beyond the basics (cache_control, metadata, tool_choice, JSON Schema keywords,
    its headers) is accepted and ignored as Ollama does, and the tool loop still works."""
    draft = {"$schema": "http://json-schema.org/draft-07/schema#", "additionalProperties": False}
    tool = {**WEATHER_TOOL, "input_schema": {**draft, **WEATHER_TOOL["input_schema"]}}
    body = {
        **GREEDY,
        "stream": True,
        "system": [{"type": "text", "text": "You are a helpful assistant.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": WEATHER_ASK[0]["content"],
                                                   "cache_control": {"type": "ephemeral"}}]}],
        "tools": [tool],
        "tool_choice": {"type": "auto"},
        "metadata": {"user_id": "user_abc_account__session_123"},
        "thinking": {"type": "disabled"},
    }  # fmt: skip
    headers = {"x-api-key": "ollama", "anthropic-version": "2023-06-01", "anthropic-beta": "claude-code-20250219"}
    events = sse(post(server, body, headers=headers))
    block = next(d["content_block"] for n, d in events if n == "content_block_start")
    assert block["type"] == "tool_use" and block["name"] == "get_weather"
    assert events[-2][1]["delta"] == {"stop_reason": "tool_use"}


def test_mixed_blocks_become_the_native_messages(server: Any) -> None:
    """An assistant's thinking, text and tool_use make one message, a user's tool_result a `tool` message
    beside its text: the prompt has exactly the native request's token count (thinking off, so the earlier
    thinking is not rendered either way; the count is what the API lets a test observe)."""
    call = {"id": "call_abcd1234", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    native_messages = [
        *WEATHER_ASK,
        {"role": "assistant", "content": "Let me check.", "thinking": "I should call a tool.", "tool_calls": [call]},
        {"role": "tool", "content": "Sunny, 22 C", "tool_call_id": "call_abcd1234"},
        {"role": "user", "content": "thanks"},
    ]
    native_tool = {"type": "function", "function": {"name": "get_weather", "description": WEATHER_TOOL["description"],
                                                    "parameters": WEATHER_TOOL["input_schema"]}}  # fmt: skip
    native = native_chat(server, native_messages, tools=[native_tool], think=False, options={"num_predict": 1})
    history = [
        *WEATHER_ASK,
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "I should call a tool.", "signature": ""},
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "call_abcd1234", "name": "get_weather", "input": {"city": "Paris"}}]},
        {"role": "user", "content": [
            {"type": "text", "text": "thanks"},
            {"type": "tool_result", "tool_use_id": "call_abcd1234", "content": "Sunny, 22 C"}]},
    ]  # fmt: skip
    body = {**GREEDY, "max_tokens": 1, "messages": history, "tools": [WEATHER_TOOL], "thinking": {"type": "disabled"}}
    assert post(server, body).json()["usage"]["input_tokens"] == native["prompt_eval_count"]
