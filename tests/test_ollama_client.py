"""The official `ollama` Python client, unmodified, against the real server and real MLX generation."""

from __future__ import annotations

from typing import Any

import ollama
import pytest

GREEDY = {"temperature": 0, "num_predict": 48}


@pytest.fixture(scope="module")
def client(server: Any) -> ollama.Client:
    return ollama.Client(host=server.url)


def test_chat_stream_ends_with_done(client: ollama.Client) -> None:
    chunks = list(
        client.chat(model="qwen-tiny", messages=[{"role": "user", "content": "Hello there!"}], stream=True, think=False)
    )
    assert len(chunks) >= 2
    assert all(c.message.role == "assistant" for c in chunks)
    assert [c.done for c in chunks] == [False] * (len(chunks) - 1) + [True]
    final = chunks[-1]
    assert final.done_reason == "stop"
    assert final.message.content == ""
    assert final.eval_count and final.eval_count >= len(chunks) - 1
    assert final.prompt_eval_count and final.prompt_eval_count > 5
    assert final.total_duration and final.total_duration >= final.eval_duration  # type: ignore[operator]
    text = "".join(c.message.content for c in chunks)
    assert text.strip() and "<|im_end|>" not in text and "<think>" not in text


def test_chat_nonstream_matches_stream(client: ollama.Client) -> None:
    messages = [{"role": "user", "content": "How are you today?"}]
    whole = client.chat(model="qwen-tiny", messages=messages, options=GREEDY, think=False)
    pieces = client.chat(model="qwen-tiny", messages=messages, options=GREEDY, think=False, stream=True)
    assert "".join(c.message.content for c in pieces) == whole.message.content
    assert whole.done and whole.done_reason in ("stop", "length")
    assert isinstance(whole.eval_duration, int) and whole.eval_duration > 0


def test_thinking_is_split_from_content(client: ollama.Client) -> None:
    messages = [{"role": "user", "content": "Why is the sky blue?"}]
    thought = client.chat(model="qwen-tiny", messages=messages, options=GREEDY)
    assert thought.message.thinking and thought.message.thinking.strip()
    assert "<think>" not in thought.message.content and "</think>" not in thought.message.content
    assert thought.message.content.strip()
    plain = client.chat(model="qwen-tiny", messages=messages, options=GREEDY, think=False)
    assert not plain.message.thinking
    assert plain.message.content.strip()


def test_generate_stream_and_not(client: ollama.Client) -> None:
    whole = client.generate(model="qwen-tiny", prompt="Tell me about chess.", options=GREEDY, think=False)
    assert whole.response.strip() and whole.done
    assert whole.context and len(whole.context) >= (whole.prompt_eval_count or 0)
    chunks = list(
        client.generate(model="qwen-tiny", prompt="Tell me about chess.", options=GREEDY, think=False, stream=True)
    )
    assert "".join(c.response for c in chunks) == whole.response
    assert chunks[-1].done and chunks[-1].context == whole.context


def test_num_predict_limits_tokens(client: ollama.Client) -> None:
    out = client.generate(model="qwen-tiny", prompt="Tell me a long story.", options={"num_predict": 3}, think=False)
    assert out.done_reason == "length"
    assert out.eval_count == 3


def test_seed_gives_same_output(client: ollama.Client) -> None:
    options = {"temperature": 8, "top_k": 0, "top_p": 1.0, "seed": 1234, "num_predict": 24}
    prompt = "Write something random."
    first = client.generate(model="qwen-tiny", prompt=prompt, options=options, think=False).response
    second = client.generate(model="qwen-tiny", prompt=prompt, options=options, think=False).response
    other = client.generate(model="qwen-tiny", prompt=prompt, options={**options, "seed": 99}, think=False).response
    assert first == second
    assert first != other  # this hot, two seeds diverge within 24 tokens


def test_stop_string_cuts_output(client: ollama.Client) -> None:
    base = client.generate(model="qwen-tiny", prompt="What is your name?", options=GREEDY, think=False).response
    assert len(base) > 6
    stop = base[3:6]
    expected = base[: base.index(stop)]
    cut = client.generate(
        model="qwen-tiny", prompt="What is your name?", options={**GREEDY, "stop": [stop]}, think=False
    )
    assert cut.response == expected
    assert cut.done_reason == "stop"
    streamed = client.generate(
        model="qwen-tiny", prompt="What is your name?", options={**GREEDY, "stop": [stop]}, think=False, stream=True
    )
    assert "".join(c.response for c in streamed) == expected


def test_sampling_options_accepted(client: ollama.Client) -> None:
    options = {
        "temperature": 0.7,
        "top_k": 20,
        "top_p": 0.8,
        "min_p": 0.05,
        "seed": 7,
        "repeat_penalty": 1.2,
        "repeat_last_n": 32,
        "presence_penalty": 0.5,
        "frequency_penalty": 0.5,
        "num_ctx": 1024,
        "num_predict": 16,
        "bogus_option": 1,
        "mirostat": None,
    }
    out = client.chat(model="qwen-tiny", messages=[{"role": "user", "content": "Hi"}], options=options, think=False)
    assert out.done and out.eval_count and out.eval_count <= 16


def test_errors_surface_as_response_error(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as err:
        client.chat(model="does-not-exist", messages=[{"role": "user", "content": "hi"}])
    assert err.value.status_code == 404
    assert err.value.error == "model 'does-not-exist' not found"


def test_list_shows_registered_models(client: ollama.Client) -> None:
    names = {m.model for m in client.list().models}
    assert {"tiny:latest", "qwen-tiny:latest"} <= names


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def test_tool_calls_are_parsed_not_leaked(client: ollama.Client) -> None:
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    whole = client.chat(model="qwen-tiny", messages=messages, tools=[WEATHER_TOOL], options=GREEDY, think=False)
    calls = whole.message.tool_calls
    assert calls and calls[0].function.name == "get_weather"
    assert isinstance(calls[0].function.arguments, dict)
    assert "<tool_call>" not in whole.message.content
    streamed = list(
        client.chat(
            model="qwen-tiny", messages=messages, tools=[WEATHER_TOOL], options=GREEDY, think=False, stream=True
        )
    )
    streamed_calls = [c for chunk in streamed for c in (chunk.message.tool_calls or [])]
    assert [c.function.name for c in streamed_calls] == ["get_weather"]
    assert all("<tool_call>" not in chunk.message.content for chunk in streamed)


def test_tool_call_ids_and_index_on_the_wire(server: Any) -> None:
    import httpx

    body = {"model": "qwen-tiny", "messages": [{"role": "user", "content": "Weather in Oslo?"}], "stream": False,
            "think": False, "tools": [WEATHER_TOOL], "options": GREEDY}  # fmt: skip
    call = httpx.post(server.url + "/api/chat", json=body, timeout=60).json()["message"]["tool_calls"][0]
    assert call["id"].startswith("call_") and len(call["id"]) == 13
    assert call["function"]["index"] == 0 and isinstance(call["function"]["arguments"], dict)


def test_show(client: ollama.Client, server: Any) -> None:
    import httpx

    shown = client.show("tiny")
    assert shown.modelfile and "FROM " in shown.modelfile and "TEMPLATE" in shown.modelfile
    assert httpx.post(server.url + "/api/show", json={"model": "tiny"}).json()["system"] == "You are a tiny test model."
    assert shown.parameters and 'stop                           "</s>"' in shown.parameters
    assert shown.details and shown.details.family == "qwen2" and shown.details.format == "safetensors"
    assert shown.modelinfo and shown.modelinfo["general.architecture"] == "qwen2"
    assert shown.modelinfo["qwen2.block_count"] >= 1 and shown.modelinfo["general.parameter_count"] > 100_000
    assert shown.capabilities == ["completion"]  # its Go TEMPLATE has no .Tools or .Think
    own = client.show("qwen-tiny")
    assert own.capabilities == ["completion", "tools", "insert", "thinking"] and "<|im_start|>" in (own.template or "")
    body = {"model": "tiny", "system": "Other.", "options": {"temperature": 0.5}}
    overridden = httpx.post(server.url + "/api/show", json=body).json()
    assert overridden["system"] == "Other." and "temperature                    0.5" in overridden["parameters"]
    assert httpx.post(server.url + "/api/show", json={"name": "tiny"}).status_code == 200  # legacy `name`
    missing = httpx.post(server.url + "/api/show", json={"model": "nope"})
    assert (missing.status_code, missing.json()) == (404, {"error": "model 'nope' not found"})
