"""`logprobs` / `top_logprobs` and `_debug_render_only`, through the real server and real MLX generation.

Log-probabilities are the model's own distribution (raw logits, before penalties and temperature, as Ollama
reports them), so under greedy decoding without penalties the chosen token is always the top entry.
"""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path
from typing import Any

import httpx
import mlx.core as mx
import ollama
import openai
import pytest
from mlx_lm.tokenizer_utils import load as load_tokenizer

from shim.engine.logprobs import LogprobRecorder
from shim.jsonbytes import go_float, go_json
from tests.conftest import Server

GREEDY = {"temperature": 0, "repeat_penalty": 1.0, "num_predict": 12}


def _post(server: Server, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(server.url + path, json=body, timeout=120)


def _lines(response: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(line) for line in response.text.splitlines() if line]


def _check_entry(entry: dict[str, Any], top: int) -> None:
    assert list(entry)[:2] == ["token", "logprob"]
    assert entry["logprob"] <= 0
    if entry["token"]:
        assert bytes(entry["bytes"]).decode("utf-8", "replace") == entry["token"]
    if top:
        alternatives = entry["top_logprobs"]
        assert len(alternatives) == top
        values = [a["logprob"] for a in alternatives]
        assert values == sorted(values, reverse=True)
        assert sum(math.exp(v) for v in values) <= 1 + 1e-4
        assert all(list(a)[:2] == ["token", "logprob"] and "top_logprobs" not in a for a in alternatives)
    else:
        assert "top_logprobs" not in entry


def test_generate_logprobs_greedy_nonstream(server: Server) -> None:
    body = {"model": "tiny", "prompt": "Why is the sky blue?", "stream": False, "options": GREEDY}
    out = _post(server, "/api/generate", {**body, "logprobs": True, "top_logprobs": 3}).json()
    entries = out["logprobs"]
    assert len(entries) == out["eval_count"] or len(entries) == out["eval_count"] - 1  # no entry for the end token
    assert "".join(e["token"] for e in entries) == out["response"]
    for entry in entries:
        _check_entry(entry, 3)
        best = entry["top_logprobs"][0]
        assert best["token"] == entry["token"] and best["logprob"] == pytest.approx(entry["logprob"], abs=1e-5)
    # Go's field order: logprobs after the metrics
    assert list(out)[-1] == "logprobs"
    plain = _post(server, "/api/generate", body).json()
    assert "logprobs" not in plain and plain["response"] == out["response"]


def test_generate_stream_matches_nonstream(server: Server) -> None:
    body = {"model": "tiny", "prompt": "Tell me a story", "options": GREEDY, "logprobs": True}
    whole = _post(server, "/api/generate", {**body, "stream": False}).json()
    chunks = _lines(_post(server, "/api/generate", body))
    streamed = [e for c in chunks for e in c.get("logprobs", [])]
    assert [e["token"] for e in streamed] == [e["token"] for e in whole["logprobs"]]
    assert [e["logprob"] for e in streamed] == pytest.approx([e["logprob"] for e in whole["logprobs"]], abs=1e-5)
    for c in chunks[:-1]:
        if "logprobs" in c:
            assert list(c)[-1] == "logprobs" and "".join(e["token"] for e in c["logprobs"]) == c["response"]
    assert "logprobs" not in chunks[-1] and chunks[-1]["done"]
    for entry in streamed:
        _check_entry(entry, 0)


def test_chat_logprobs_official_client(server: Server) -> None:
    client = ollama.Client(host=server.url)
    messages = [{"role": "user", "content": "hello there"}]
    response = client.chat("qwen-tiny", messages=messages, options=GREEDY, think=False, logprobs=True, top_logprobs=2)
    entries = response.logprobs
    assert entries and "".join(e.token for e in entries) == response.message.content
    for e in entries:
        assert e.logprob <= 0 and len(e.top_logprobs) == 2
        assert e.top_logprobs[0].token == e.token
    parts = client.chat("qwen-tiny", messages=messages, options=GREEDY, think=False, stream=True, logprobs=True)
    streamed = [e for part in parts for e in (part.logprobs or [])]
    assert [e.token for e in streamed] == [e.token for e in entries]


def test_chat_raw_shape(server: Server) -> None:
    body = {"model": "qwen-tiny", "messages": [{"role": "user", "content": "hi"}], "stream": False,
            "options": GREEDY, "logprobs": True, "think": False}  # fmt: skip
    out = _post(server, "/api/chat", body).json()
    keys = list(out)
    assert keys[: keys.index("logprobs") + 1] == ["model", "created_at", "message", "done", "done_reason", "logprobs"]
    assert keys[keys.index("logprobs") + 1] == "total_duration"
    assert "".join(e["token"] for e in out["logprobs"]) == out["message"]["content"]


def test_stop_string_trims_logprobs(server: Server) -> None:
    """The tokens of a stop string (and after it) have no entries; those before it keep theirs."""
    body = {"model": "tiny", "prompt": "Tell me a story", "options": {**GREEDY, "num_predict": 24}, "stream": False,
            "logprobs": True, "raw": True}  # fmt: skip
    free = _post(server, "/api/generate", body).json()
    text = free["response"]
    assert len(text) > 8
    stop = text[5:8]
    stopped = _post(server, "/api/generate", {**body, "options": {**body["options"], "stop": [stop]}}).json()
    assert stopped["done_reason"] == "stop"
    tokens = "".join(e["token"] for e in stopped["logprobs"])
    assert tokens.startswith(stopped["response"]) and len(tokens) < len(stopped["response"]) + len(stop)


def test_concurrent_requests_with_and_without_logprobs(server: Server) -> None:
    """Batched with others, a request gets the entries it gets alone (one with a penalty, so its entries come
    from the captured logits), and one that did not ask gets none."""
    body = {"model": "tiny", "prompt": "Why is the sky blue?", "stream": False, "options": GREEDY}
    asks = {
        "with": {"logprobs": True, "top_logprobs": 2},
        "penalised": {"logprobs": True, "top_logprobs": 2, "options": {**GREEDY, "repeat_penalty": 1.3}},
        "without": {},
        "other": {"prompt": "Tell me a story", "options": {**GREEDY, "num_predict": 48}},  # runs on as others join
    }
    alone = {name: _post(server, "/api/generate", {**body, **extra}).json() for name, extra in asks.items()}
    results: dict[str, Any] = {}

    def run(name: str) -> None:
        results[name] = _post(server, "/api/generate", {**body, **asks[name]}).json()

    threads = [threading.Thread(target=run, args=(name,)) for name in asks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name in asks:
        assert results[name]["response"] == alone[name]["response"]
        if "logprobs" not in asks[name]:
            assert "logprobs" not in results[name]
            continue
        got, want = results[name]["logprobs"], alone[name]["logprobs"]
        assert [e["token"] for e in got] == [e["token"] for e in want]
        assert [e["logprob"] for e in got] == pytest.approx([e["logprob"] for e in want], abs=1e-3)
        assert [[t["token"] for t in e["top_logprobs"]] for e in got] == [
            [t["token"] for t in e["top_logprobs"]] for e in want
        ]


def test_penalties_do_not_change_reported_distribution(server: Server) -> None:
    """The reported numbers are the model's, before penalties (as Ollama's): the entries are the same
    whatever repeat_penalty says, where the chosen tokens are the same."""
    body = {"model": "tiny", "prompt": "Why is the sky blue?", "stream": False, "logprobs": True, "top_logprobs": 5}
    plain = _post(server, "/api/generate", {**body, "options": {**GREEDY, "num_predict": 3}}).json()
    options = {**GREEDY, "num_predict": 3, "repeat_penalty": 1.5}
    penalised = _post(server, "/api/generate", {**body, "options": options}).json()
    assert penalised["response"] == plain["response"]  # the tiny model is sure enough of these three
    for first, other in zip(plain["logprobs"], penalised["logprobs"], strict=True):
        assert [t["token"] for t in first["top_logprobs"]] == [t["token"] for t in other["top_logprobs"]]
        assert [t["logprob"] for t in first["top_logprobs"]] == pytest.approx(
            [t["logprob"] for t in other["top_logprobs"]], abs=1e-4
        )


@pytest.mark.parametrize("path", ["/api/generate", "/api/chat"])
@pytest.mark.parametrize("value", [-1, 21])
def test_top_logprobs_out_of_range(server: Server, path: str, value: int) -> None:
    body = {"model": "no-such-model", "top_logprobs": value, "logprobs": True}  # checked before the model
    response = _post(server, path, body)
    assert response.status_code == 400
    assert response.json() == {"error": "top_logprobs must be between 0 and 20"}


def test_debug_render_generate_with_template(server: Server) -> None:
    body = {"model": "tiny", "prompt": "hello", "system": "be brief", "template": "S:{{ .System }} P:{{ .Prompt }}",
            "_debug_render_only": True}  # fmt: skip
    response = _post(server, "/api/generate", body)
    assert response.status_code == 200
    out = response.json()
    assert list(out) == ["model", "created_at", "response", "done", "_debug_info"]
    assert out["model"] == "tiny" and out["response"] == "" and out["done"] is False
    assert out["_debug_info"] == {"rendered_template": "S:be brief P:hello"}
    stored = _post(server, "/api/generate", {"model": "tiny", "prompt": "hi", "_debug_render_only": True}).json()
    rendered = stored["_debug_info"]["rendered_template"]
    assert rendered == "<|system|>\nYou are a tiny test model.</s>\n<|user|>\nhi</s>\n<|assistant|>\n"
    raw = _post(server, "/api/generate", {"model": "tiny", "prompt": "as is", "raw": True, "_debug_render_only": True})
    assert raw.json()["_debug_info"]["rendered_template"] == "as is"


def test_debug_render_chat_with_tools_and_system(server: Server) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
              "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]  # fmt: skip
    messages = [{"role": "system", "content": "SYSTEM-TEXT"}, {"role": "user", "content": "USER-TEXT"}]
    body = {"model": "qwen-tiny", "messages": messages, "tools": tools, "_debug_render_only": True, "stream": True}
    response = _post(server, "/api/chat", body)
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    out = response.json()
    assert list(out) == ["model", "created_at", "message", "done", "_debug_info"]
    assert out["message"] == {"role": "", "content": ""} and out["done"] is False
    rendered = out["_debug_info"]["rendered_template"]
    assert "SYSTEM-TEXT" in rendered and "USER-TEXT" in rendered and "get_weather" in rendered
    assert rendered.index("SYSTEM-TEXT") < rendered.index("USER-TEXT")
    # the official client reads it as a normal (unfinished) response
    client = ollama.Client(host=server.url)
    assert client.chat("qwen-tiny", messages=messages[1:], tools=tools, options=GREEDY).done is True


def test_debug_render_empty_prompt_is_a_load(server: Server) -> None:
    out = _post(server, "/api/generate", {"model": "tiny", "_debug_render_only": True}).json()
    assert out["done_reason"] == "load" and "_debug_info" not in out


def test_openai_chat_logprobs(server: Server) -> None:
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused")
    messages: Any = [{"role": "user", "content": "hello there"}]
    ask: Any = {"model": "qwen-tiny", "messages": messages, "temperature": 0, "max_tokens": 10, "logprobs": True,
                "reasoning_effort": "none"}  # fmt: skip
    response = client.chat.completions.create(**ask, top_logprobs=2)
    choice = response.choices[0]
    assert choice.logprobs is not None and choice.logprobs.content
    assert "".join(e.token for e in choice.logprobs.content) == choice.message.content
    for e in choice.logprobs.content:
        assert e.logprob <= 0 and len(e.top_logprobs) == 2
    stream = client.chat.completions.create(**ask, stream=True)
    streamed = [e.token for chunk in stream for c in chunk.choices if c.logprobs for e in c.logprobs.content or []]
    assert streamed == [e.token for e in choice.logprobs.content]
    plain = client.chat.completions.create(model="qwen-tiny", messages=messages, temperature=0, max_tokens=5)
    assert plain.choices[0].logprobs is None


def test_openai_completions_logprobs_as_ollama(server: Server) -> None:
    """Ollama maps `logprobs: n` to top_logprobs n (so n > 20 is the native 400) but writes no logprobs into
    /v1/completions answers."""
    body = {"model": "tiny", "prompt": "Why", "max_tokens": 4, "temperature": 0, "logprobs": 2}
    out = _post(server, "/v1/completions", body).json()
    assert "logprobs" not in out["choices"][0]
    too_many = _post(server, "/v1/completions", {**body, "logprobs": 21})
    assert too_many.status_code == 400
    assert too_many.json()["error"]["message"] == "top_logprobs must be between 0 and 20"


def test_openai_debug_render(server: Server) -> None:
    body = {"model": "qwen-tiny", "messages": [{"role": "user", "content": "USER-TEXT"}], "_debug_render_only": True}
    out = _post(server, "/v1/chat/completions", body).json()
    assert "USER-TEXT" in out["_debug_info"]["rendered_template"]
    assert list(out)[-1] == "_debug_info"


def test_openai_debug_render_stream_and_completions(server: Server) -> None:
    """Ollama's /v1 writers turn the unfinished debug answer into one chunk (no [DONE]); a text completion has
    no field for the rendered prompt."""
    body = {"model": "qwen-tiny", "messages": [{"role": "user", "content": "hi"}], "_debug_render_only": True,
            "stream": True}  # fmt: skip
    response = _post(server, "/v1/chat/completions", body)
    assert response.headers["content-type"] == "text/event-stream"
    frames = [f for f in response.text.split("\n\n") if f]
    assert len(frames) == 1 and frames[0].startswith("data: {")
    chunk = json.loads(frames[0].removeprefix("data: "))
    assert chunk["object"] == "chat.completion.chunk" and chunk["choices"][0]["finish_reason"] is None
    out = _post(server, "/v1/completions", {"model": "tiny", "prompt": "hi", "_debug_render_only": True}).json()
    assert out["choices"] == [{"text": "", "index": 0, "finish_reason": None}] and "_debug_info" not in out


def test_partial_utf8_token_reports_its_real_bytes(tiny_model_dir: Path) -> None:
    """A byte-level BPE token holding one byte of a multi-byte character decodes to U+FFFD on its own (as in
    Ollama's token text), but its `bytes` are the byte it stands for."""
    tokenizer = load_tokenizer(tiny_model_dir)
    recorder = LogprobRecorder(tokenizer, 0)
    first_byte = tokenizer._tokenizer.convert_tokens_to_ids("Ã")  # GPT-2's character for the byte 0xC3
    assert isinstance(first_byte, int)
    entry = recorder.record(first_byte, mx.log(mx.full((tokenizer.vocab_size,), 1 / tokenizer.vocab_size)))
    assert entry.token == "\ufffd" and entry.bytes == b"\xc3"
    assert entry.logprob == pytest.approx(-math.log(tokenizer.vocab_size), abs=1e-4)
    word = tokenizer.encode(" sky", add_special_tokens=False)[0]
    assert recorder.record(word, mx.zeros((tokenizer.vocab_size,))).bytes == recorder._text(word)[0].encode()


@pytest.mark.parametrize(
    ("value", "text"),
    [(-3.814697265625e-06, b"-0.000003814697265625"), (-5e-07, b"-5e-7"), (-16.0, b"-16"), (0.0, b"0"),
     (-0.051138877868652344, b"-0.051138877868652344"), (1e21, b"1e+21"), (-1.5e-10, b"-1.5e-10")],
)  # fmt: skip
def test_logprob_numbers_as_go_writes_float64(value: float, text: bytes) -> None:
    assert go_json([go_float(value)]) == b"[" + text + b"]"


def test_thinking_tokens_report_their_logprobs(server: Server) -> None:
    """Every generated token but the end of turn has its entry, thinking and markers included (Ollama's runner
    reports per token, before the server splits thinking out)."""
    body = {"model": "qwen-tiny", "messages": [{"role": "user", "content": "hello there"}], "options": GREEDY,
            "logprobs": True}  # fmt: skip
    chunks = _lines(_post(server, "/api/chat", body))
    final = chunks[-1]
    assert final["done_reason"] == "length"  # 12 tokens of thinking: no end-of-turn token among them
    entries = [e for c in chunks for e in c.get("logprobs", [])]
    assert len(entries) == final["eval_count"]
    assert any(c["message"].get("thinking") and c.get("logprobs") for c in chunks)
    thinking = "".join(c["message"].get("thinking", "") for c in chunks)
    assert thinking and thinking in "".join(e["token"] for e in entries)
