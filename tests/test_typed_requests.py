"""The typed requests each protocol's binder or converter builds (no server): a tool call sent back in the
history becomes one `ToolCall` whatever the protocol, and reaches a Go template and a Jinja template in the
shapes each reads; embed requests carry Go's defaults."""

from __future__ import annotations

from typing import Any

import pytest

from shim.anthropic.convert import bind as bind_anthropic
from shim.anthropic.convert import chat_request as anthropic_chat
from shim.engine import Message, ToolCall
from shim.errors import Kind, ShimError
from shim.gotemplate import Template, chat_values
from shim.ollama.binding import CHAT, EMBED, EMBEDDINGS, SHOW
from shim.openai.convert import chat_request as openai_chat
from shim.service import EmbeddingRequest, ShowRequest, TextEmbedRequest

_WEATHER = {"city": "Paris"}


def _assistant(messages: list[Message]) -> Message:
    return next(m for m in messages if m.role == "assistant")


def _ollama(calls: list[dict[str, Any]]) -> list[Message]:
    body = {"model": "m", "messages": [{"role": "ASSISTANT", "content": "", "tool_calls": calls}]}
    return CHAT.bind(body).messages


def test_ollama_binder_builds_tool_calls() -> None:
    messages = _ollama(
        [
            {"function": {"name": "get_weather", "arguments": _WEATHER}},
            {"id": "call_1", "function": {"index": 2, "name": "f", "arguments": {}}},
            {"function": {"name": "no_arguments"}},
        ]
    )
    assert messages[0].role == "assistant"  # api.Message lowercases the role
    assert messages[0].tool_calls == [
        ToolCall("get_weather", _WEATHER, index=None),
        ToolCall("f", {}, index=2, id="call_1"),
        ToolCall("no_arguments", None, index=None),
    ]


def test_openai_converter_builds_tool_calls_and_names_results() -> None:
    calls = [
        {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
        {"id": "call_b", "type": "function", "function": {"name": "g", "arguments": ""}},
    ]
    body = {
        "model": "m",
        "messages": [
            {"role": "assistant", "content": None, "tool_calls": calls},
            {"role": "tool", "tool_call_id": "call_a", "content": "sunny"},
        ],
    }
    messages = openai_chat(body).messages
    assert _assistant(messages).tool_calls == [
        ToolCall("get_weather", _WEATHER, 0, "call_a"),
        ToolCall("g", {}, 1, "call_b"),
    ]
    assert messages[1] == Message("tool", "sunny", tool_name="get_weather")


@pytest.mark.parametrize("arguments", ["[1]", "3", '"text"', "true"])
def test_openai_arguments_that_are_not_an_object_are_ollamas_400(arguments: str) -> None:
    body = {"model": "m", "messages": [{"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": arguments}}]}]}  # fmt: skip
    with pytest.raises(ShimError) as error:
        openai_chat(body)
    assert (error.value.message, error.value.kind) == ("invalid tool call arguments", Kind.BAD_INPUT)


def test_anthropic_converter_builds_tool_calls() -> None:
    use = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": _WEATHER}
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}
    body = {
        "model": "m",
        "max_tokens": 8,
        "messages": [{"role": "assistant", "content": [use]}, {"role": "user", "content": [result]}],
    }
    messages = anthropic_chat(bind_anthropic(body)).messages
    assert _assistant(messages).tool_calls == [ToolCall("get_weather", _WEATHER, index=None, id="toolu_1")]
    assert messages[1] == Message("tool", "sunny", tool_call_id="toolu_1")


def test_a_go_template_reads_every_protocols_calls_as_ollamas_api_tool_call() -> None:
    template = Template.parse(
        "{{range .Messages}}{{range .ToolCalls}}[{{.ID}}|{{.Function.Index}}|{{.Function.Name}}|"
        "{{.Function.Arguments}}]{{end}}{{end}}"
    )
    calls = _ollama([{"function": {"name": "get_weather", "arguments": _WEATHER}}, {"function": {"name": "f"}}])
    values = chat_values([m.to_template() for m in calls])
    assert template.execute(values) == '[|0|get_weather|{"city":"Paris"}][|0|f|{}]'


def test_the_jinja_shape_shows_an_index_only_when_the_request_sent_one() -> None:
    assert ToolCall("f", _WEATHER, index=None, id="c").to_hf() == {
        "type": "function",
        "function": {"name": "f", "arguments": _WEATHER},
        "id": "c",
    }
    assert ToolCall("f", _WEATHER, index=1).to_hf() == {
        "type": "function",
        "function": {"index": 1, "name": "f", "arguments": _WEATHER},
    }


def test_a_tool_result_naming_only_the_call_id_gets_the_functions_name_for_jinja() -> None:
    call = Message("assistant", tool_calls=[ToolCall("get_weather", _WEATHER, id="call_1")])
    result = Message("tool", "sunny", tool_call_id="call_1")
    names: dict[str, str] = {}
    call.to_hf(call.content, names)
    assert result.to_hf(result.content, names) == {
        "role": "tool",
        "content": "sunny",
        "name": "get_weather",
        "tool_call_id": "call_1",
    }


def test_embed_requests_carry_gos_defaults() -> None:
    assert EMBED.bind({"model": "m", "input": ["a"]}) == TextEmbedRequest("m", ["a"], truncate=True, dimensions=0)
    assert EMBED.bind({"MODEL": "m", "truncate": False, "keep_alive": "1m"}) == TextEmbedRequest(
        "m", truncate=False, keep_alive=60.0
    )
    assert EMBEDDINGS.bind({"model": "m", "prompt": "p"}) == EmbeddingRequest("m", "p")


def test_show_takes_name_when_model_is_absent() -> None:
    assert SHOW.bind({"name": "old-spelling"}).model == "old-spelling"
    assert SHOW.bind({"model": "m", "name": "n", "verbose": True}) == ShowRequest("m", "n", verbose=True)
