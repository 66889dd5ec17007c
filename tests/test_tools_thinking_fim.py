"""Tools, thinking and fill-in-the-middle through the real server and real MLX generation, driven by the
official `ollama` client, LangChain's ChatOllama and raw httpx; and Ollama's errors where a model lacks one.

`qwen-tiny` is the trained tiny model with its own chat template (tools, thinking, Qwen2.5-Coder FIM
tokens); `tiny` is the same weights behind a Go TEMPLATE that has none of these.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import httpx
import ollama
import pytest

from scripts.tiny_model import corpus, fim
from tests.conftest import cli
from tests.test_ollama_client import WEATHER_TOOL

GREEDY = {"temperature": 0, "num_predict": 64}
WEATHER_ASK = [{"role": "user", "content": "What's the weather in Paris?"}]
CALL_ID = re.compile(r"call_[a-z0-9]{8}")
MARKUP = ("<tool_call>", "</tool_call>", "<think>", "</think>", "<|im_end|>")


@pytest.fixture(scope="module")
def client(server: Any) -> ollama.Client:
    return ollama.Client(host=server.url)


def post(server: Any, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(server.url + path, json=body, timeout=120)


def lines(resp: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(line) for line in resp.text.splitlines()]


# ---------------------------------------------------------------------------------------------------
# Tools


@pytest.mark.parametrize("think", [True, False])
def test_tool_call_round_trip(client: ollama.Client, server: Any, think: bool) -> None:
    """call -> result by tool_name (ollama client) -> answer; call -> result by tool_call_id only -> answer."""
    first = client.chat(model="qwen-tiny", messages=WEATHER_ASK, tools=[WEATHER_TOOL], options=GREEDY, think=think)
    assert first.message.content == "" and first.done_reason == "stop"
    assert bool(first.message.thinking) is think
    (call,) = first.message.tool_calls or []
    assert call.function.name == "get_weather" and call.function.arguments == {"city": "Paris"}
    history = [*WEATHER_ASK, first.message, {"role": "tool", "content": "Sunny, 22 C", "tool_name": "get_weather"}]
    answer = client.chat(model="qwen-tiny", messages=history, tools=[WEATHER_TOOL], options=GREEDY, think=think)
    assert answer.message.content == corpus.RESULT_ANSWER and not answer.message.tool_calls

    # the ollama client drops `id`, so this round goes over the wire as clients such as LangChain send it
    body = {"model": "qwen-tiny", "stream": False, "think": think, "tools": [WEATHER_TOOL], "options": GREEDY}
    message = post(server, "/api/chat", {**body, "messages": WEATHER_ASK}).json()["message"]
    (wire_call,) = message["tool_calls"]
    assert CALL_ID.fullmatch(wire_call["id"]) and wire_call["function"]["index"] == 0
    result = {"role": "tool", "content": "Sunny, 22 C", "tool_call_id": wire_call["id"]}
    answer_message = post(server, "/api/chat", {**body, "messages": [*WEATHER_ASK, message, result]}).json()["message"]
    assert answer_message["content"] == corpus.RESULT_ANSWER and "tool_calls" not in answer_message


def test_assistant_tool_calls_without_content_on_the_wire(server: Any) -> None:
    """An assistant turn with tool_calls and no `content` key at all, and a result by tool_call_id."""
    call = {"id": "call_abcd1234", "function": {"index": 0, "name": "get_weather", "arguments": {"city": "Paris"}}}
    body = {"model": "qwen-tiny", "stream": False, "think": False, "tools": [WEATHER_TOOL], "options": GREEDY,
            "messages": [*WEATHER_ASK, {"role": "assistant", "tool_calls": [call]},
                         {"role": "tool", "content": "Sunny", "tool_call_id": "call_abcd1234"}]}  # fmt: skip
    resp = post(server, "/api/chat", body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["message"] == {"role": "assistant", "content": corpus.RESULT_ANSWER}


@pytest.mark.parametrize("think", [True, False])
def test_streamed_tool_call_never_leaks_markup(server: Any, think: bool) -> None:
    body = {"model": "qwen-tiny", "messages": WEATHER_ASK, "tools": [WEATHER_TOOL], "options": GREEDY, "think": think}
    chunks = lines(post(server, "/api/chat", body))
    pieces = [c["message"].get("content", "") + c["message"].get("thinking", "") for c in chunks]
    assert not any(m in p or p.endswith(("<", "</")) for p in pieces for m in MARKUP), pieces
    calls = [call for c in chunks for call in c["message"].get("tool_calls", [])]
    assert [c["function"] for c in calls] == [{"index": 0, "name": "get_weather", "arguments": {"city": "Paris"}}]
    assert CALL_ID.fullmatch(calls[0]["id"])
    assert "".join(c["message"]["content"] for c in chunks) == ""
    assert chunks[-1]["done"] and chunks[-1]["done_reason"] == "stop"


def test_langchain_bind_tools_round_trip(server: Any) -> None:
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_core.tools import tool
    from langchain_ollama import ChatOllama

    @tool
    def get_weather(city: str) -> str:
        """Get the current weather for a city."""
        return "Sunny, 22 C"

    llm = ChatOllama(model="qwen-tiny", base_url=server.url, temperature=0, num_predict=64, reasoning=False)
    bound = llm.bind_tools([get_weather])
    question = HumanMessage("What's the weather in Paris?")
    reply = bound.invoke([question])
    assert reply.content == "" and len(reply.tool_calls) == 1
    call = reply.tool_calls[0]
    assert call["name"] == "get_weather" and call["args"] == {"city": "Paris"}
    # LangChain gives calls ids of its own and sends the result back by that id alone (tool_call_id)
    result = ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"])
    answer = bound.invoke([question, reply, result])
    assert answer.content == corpus.RESULT_ANSWER and not answer.tool_calls

    chunks = list(bound.stream([question]))
    assert not any(m in str(c.content) for c in chunks for m in MARKUP)
    merged = chunks[0]
    for c in chunks[1:]:
        merged = merged + c
    assert [(c["name"], c["args"]) for c in merged.tool_calls] == [("get_weather", {"city": "Paris"})]
    assert "".join(str(c.content) for c in chunks) == ""


def test_langchain_reasoning_is_split(server: Any) -> None:
    from langchain_ollama import ChatOllama

    llm = ChatOllama(model="qwen-tiny", base_url=server.url, temperature=0, num_predict=64, reasoning=True)
    joke = next(i for i in corpus.INTENTS if i.name == "joke")
    reply = llm.invoke("tell me a joke")
    assert reply.content == joke.answer
    assert reply.additional_kwargs["reasoning_content"] == joke.think


# ---------------------------------------------------------------------------------------------------
# Thinking


def test_thinking_split_while_streaming(server: Any) -> None:
    joke = next(i for i in corpus.INTENTS if i.name == "joke")
    for path, key in (("/api/chat", None), ("/api/generate", "response")):
        body: dict[str, Any] = {"model": "qwen-tiny", "options": GREEDY, "think": True}
        body |= (
            {"messages": [{"role": "user", "content": "tell me a joke"}]}
            if key is None
            else {"prompt": "tell me a joke"}
        )
        chunks = lines(post(server, path, body))
        parts = [c["message"] if key is None else c for c in chunks]
        thinking = [p.get("thinking", "") for p in parts]
        content = [p["content"] if key is None else p[key] for p in parts]
        assert "".join(thinking) == joke.think and "".join(content) == joke.answer
        assert sum(bool(t) for t in thinking) > 1  # streamed piece by piece, not at the end
        assert not any(m in p for p in thinking + content for m in MARKUP)
        whole = post(server, path, {**body, "stream": False}).json()
        part = whole["message"] if key is None else whole
        assert part["thinking"] == joke.think and (part["content"] if key is None else part[key]) == joke.answer


def test_think_false_turns_thinking_off_through_the_template(client: ollama.Client) -> None:
    joke = next(i for i in corpus.INTENTS if i.name == "joke")
    reply = client.chat(
        model="qwen-tiny", messages=[{"role": "user", "content": "tell me a joke"}], options=GREEDY, think=False
    )
    assert reply.message.content == joke.answer and reply.message.thinking is None
    # the template closed an empty think block in the prompt: its tokens are counted there
    thought = client.chat(model="qwen-tiny", messages=[{"role": "user", "content": "tell me a joke"}], options=GREEDY)
    assert (reply.prompt_eval_count or 0) > (thought.prompt_eval_count or 0)
    assert thought.message.thinking == joke.think


@pytest.mark.parametrize("level", ["high", "medium", "low"])
def test_think_levels_accepted(client: ollama.Client, level: str) -> None:
    joke = next(i for i in corpus.INTENTS if i.name == "joke")
    reply = client.chat(
        model="qwen-tiny",
        messages=[{"role": "user", "content": "tell me a joke"}],
        options=GREEDY,
        think=level,  # type: ignore[arg-type]
    )
    assert reply.message.thinking == joke.think and reply.message.content == joke.answer


def test_earlier_thinking_is_not_fed_back(server: Any) -> None:
    """Earlier assistant thinking (field or inline block) does not reach the prompt: same prompt size."""
    ask = {"role": "user", "content": "hello"}
    again = {"role": "user", "content": "tell me a joke"}
    base = {"model": "qwen-tiny", "stream": False, "think": False, "options": {**GREEDY, "num_predict": 1}}
    counts = []
    for earlier in (
        {"role": "assistant", "content": "Hi!"},
        {"role": "assistant", "content": "Hi!", "thinking": "a long secret plan " * 5},
        {"role": "assistant", "content": "<think>\n" + "a long secret plan " * 5 + "\n</think>\n\nHi!"},
    ):
        counts.append(
            post(server, "/api/chat", {**base, "messages": [ask, earlier, again]}).json()["prompt_eval_count"]
        )
    assert counts[0] == counts[1] == counts[2]


# ---------------------------------------------------------------------------------------------------
# Fill-in-the-middle


FIM_CASES = [
    fim.fim_parts(fn, before, after)
    for fn, before, after in (
        (fim.FIM_FUNCTIONS[0], fim.HELDOUT_FIM_BEFORE[0], fim.HELDOUT_FIM_AFTER[0]),
        (fim.FIM_FUNCTIONS[3], fim.HELDOUT_FIM_BEFORE[1], fim.HELDOUT_FIM_AFTER[1]),
        (fim.FIM_FUNCTIONS[6], fim.HELDOUT_FIM_BEFORE[0], fim.HELDOUT_FIM_AFTER[1]),
    )
]


@pytest.mark.parametrize(("prefix", "suffix", "middle"), FIM_CASES)
def test_fill_in_the_middle(client: ollama.Client, prefix: str, suffix: str, middle: str) -> None:
    whole = client.generate(model="qwen-tiny", prompt=prefix, suffix=suffix, options=GREEDY)
    assert whole.response == middle and whole.done_reason == "stop" and not whole.thinking
    streamed = list(client.generate(model="qwen-tiny", prompt=prefix, suffix=suffix, options=GREEDY, stream=True))
    assert "".join(c.response for c in streamed) == middle and len(streamed) > 2


def test_fill_in_the_middle_over_v1_completions(server: Any) -> None:
    prefix, suffix, middle = FIM_CASES[0]
    body = {"model": "qwen-tiny", "prompt": prefix, "suffix": suffix, "temperature": 0, "max_tokens": 64}
    resp = post(server, "/v1/completions", body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["choices"][0]["text"] == middle


def test_fill_in_the_middle_with_a_go_template(server: Any, tiny_model_dir: Any) -> None:
    """A Modelfile TEMPLATE with .Suffix, as Ollama's qwen2.5-coder has, gives the same middle."""
    template = (
        "{{- if .Suffix }}<|fim_prefix|>{{ .Prompt }}<|fim_suffix|>{{ .Suffix }}<|fim_middle|>"
        "{{- else }}{{ .Prompt }}{{- end }}"
    )
    path = server.home / "coder.Modelfile"
    path.write_text(f'FROM {tiny_model_dir}\nTEMPLATE """{template}"""\nPARAMETER stop <|endoftext|>\n')
    assert cli("create", "coder", "-f", str(path), env=server.env).returncode == 0
    shown = post(server, "/api/show", {"model": "coder"}).json()
    assert shown["capabilities"] == ["completion", "insert"]
    prefix, suffix, middle = FIM_CASES[1]
    resp = post(server, "/api/generate", {"model": "coder", "prompt": prefix, "suffix": suffix, "stream": False,
                                          "options": GREEDY})  # fmt: skip
    assert resp.json()["response"] == middle
    assert httpx.request("DELETE", server.url + "/api/delete", json={"model": "coder"}).status_code == 200


# ---------------------------------------------------------------------------------------------------
# Capabilities and clear errors for what a model cannot do


def test_capabilities_in_tags_and_show(server: Any) -> None:
    tags = {m["name"]: m["capabilities"] for m in httpx.get(server.url + "/api/tags").json()["models"]}
    assert tags["qwen-tiny:latest"] == ["completion", "tools", "insert", "thinking"]
    assert tags["tiny:latest"] == ["completion"]
    for name, caps in (("qwen-tiny", tags["qwen-tiny:latest"]), ("tiny", tags["tiny:latest"])):
        assert post(server, "/api/show", {"model": name}).json()["capabilities"] == caps


IMAGE = base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()
TINY = "registry.ollama.ai/library/tiny:latest"
NO_VISION = "this model is missing data required for image input"  # Ollama's text for a model without vision


@pytest.mark.parametrize(
    ("path", "body", "error"),
    [
        ("/api/chat", {"messages": WEATHER_ASK, "tools": [WEATHER_TOOL]}, f"{TINY} does not support tools"),
        ("/api/chat", {"messages": WEATHER_ASK, "think": True}, '"tiny" does not support thinking'),
        ("/api/chat", {"messages": WEATHER_ASK, "think": "high"}, '"tiny" does not support thinking'),
        ("/api/generate", {"prompt": "hi", "think": True}, '"tiny" does not support thinking'),
        ("/api/generate", {"prompt": "def f(", "suffix": "\n"}, f"{TINY} does not support insert"),
        ("/api/generate", {"prompt": "hi", "images": [IMAGE]}, NO_VISION),
        ("/api/chat", {"messages": [{"role": "user", "content": "hi", "images": [IMAGE]}]},
         NO_VISION),
        ("/api/chat", {"model": "qwen-tiny", "messages": [{"role": "user", "content": "hi", "images": [IMAGE]}]},
         NO_VISION),
    ],
)  # fmt: skip
def test_unsupported_capabilities_are_clear_errors(server: Any, path: str, body: dict[str, Any], error: str) -> None:
    resp = post(server, path, {"model": "tiny", **body})
    assert (resp.status_code, resp.json()) == (400, {"error": error})


def test_unsupported_capabilities_through_the_clients(client: ollama.Client, server: Any) -> None:
    with pytest.raises(ollama.ResponseError) as tools:
        client.chat(model="tiny", messages=WEATHER_ASK, tools=[WEATHER_TOOL])
    assert tools.value.status_code == 400 and tools.value.error == f"{TINY} does not support tools"
    with pytest.raises(ollama.ResponseError) as think:
        client.chat(model="tiny", messages=WEATHER_ASK, think=True)
    assert think.value.error == '"tiny" does not support thinking'
    with pytest.raises(ollama.ResponseError) as insert:
        client.generate(model="tiny", prompt="def f(", suffix="\n")
    assert insert.value.error == f"{TINY} does not support insert"
    image = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{IMAGE}"}}
    body = {"model": "tiny", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}, image]}]}
    resp = post(server, "/v1/chat/completions", body)
    assert resp.status_code == 400 and resp.json()["error"]["message"] == NO_VISION
