"""Each family's answers in its real markup, scripted token by token (shim/engine/scripted.py), through the
real server: `/api/chat` and `/v1/chat/completions`, streamed and not. Tool calls arrive as `tool_calls`
with no markup in `content`, several in one answer; thinking arrives as `thinking`; malformed markup
arrives as content; generation ends at the family's end token (the tokens scripted after it never show).

Models are the family matrix's random-weight models with their real tokenizers and templates
(tests/families.py): the scripted tokens force the output, so the weights do not matter. Each token goes
through the per-token pipeline one at a time (runner.Completion: detokenizer, end tokens, stops, markers,
thinking split, the family's format); tests/test_parsers.py cuts the same markup at every character.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from tokenizers import Tokenizer

from registry.local import register_directory
from registry.names import ModelName
from registry.store import Store
from tests.conftest import Server, start_server, stop_server


def tool(name: str, prop: str) -> dict[str, Any]:
    parameters = {"type": "object", "properties": {prop: {"type": "string"}}, "required": [prop]}
    return {"type": "function", "function": {"name": name, "description": name, "parameters": parameters}}


TOOLS = [tool("get_weather", "city"), tool("get_time", "zone")]
PARIS = {"name": "get_weather", "arguments": {"city": "Paris"}}
CET = {"name": "get_time", "arguments": {"zone": "CET"}}
WA = '{"name": "get_weather", "arguments": {"city": "Paris"}}'
TA = '{"name": "get_time", "arguments": {"zone": "CET"}}'
LEAK = "LEAKED"  # scripted after the end token: must never be generated


@dataclass
class Script:
    family: str
    text: str  # the answer in the family's markup, up to its end
    end: str  # the end token that must end generation
    calls: list[dict[str, Any]] = field(default_factory=list)
    content: str = ""
    thinking: str = ""
    think: bool | None = None
    tools: bool = True  # send TOOLS (a template that renders no tools makes the server refuse them)

    @property
    def key(self) -> str:
        return f"script {SCRIPTS.index(self)} ({self.family})"


DS_CALL = '<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{"city": "Paris"}\n```<｜tool▁call▁end｜>'
XML_CALL = "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n</function>\n</tool_call>"
XML_CALL2 = "<tool_call>\n<function=get_time>\n<parameter=zone>\nCET\n</parameter>\n</function>\n</tool_call>"
H_CALL = "<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>"
SCRIPTS = [
    Script(
        "llama3.1",
        WA.replace("arguments", "parameters") + "; " + TA.replace("arguments", "parameters"),
        "<|eot_id|>",
        calls=[PARIS, CET],
    ),
    Script("llama3.1", f"<|python_tag|>{WA}", "<|eom_id|>", calls=[PARIS]),
    Script(
        "llama3.1",
        '{"name": "get_weather", "parameters": {"city": ',
        "<|eot_id|>",
        content='{"name": "get_weather", "parameters": {"city": ',
    ),
    Script(
        "qwen3",
        f"<think>\nPlan.\n</think>\n\n<tool_call>\n{WA}\n</tool_call>\n<tool_call>\n{TA}\n</tool_call>",
        "<|im_end|>",
        calls=[PARIS, CET],
        thinking="Plan.",
        think=True,
    ),
    Script(
        "qwen3",
        "<tool_call>\n{not json}\n</tool_call>",
        "<|im_end|>",
        content="<tool_call>\n{not json}\n</tool_call>",
        think=False,
    ),
    # Qwen3.5: mlx-lm's qwen3_coder parser (XML calls); its template opens the think block itself
    Script(
        "qwen3.5",
        f"Plan.\n</think>\n\n{XML_CALL}\n{XML_CALL2}",
        "<|im_end|>",
        calls=[PARIS, CET],
        thinking="Plan.",
        think=True,
    ),
    # R1's template ends the prompt in `<think>` and renders no tools (no tools: a call is content)
    Script(
        "deepseek-r1",
        "Easy.\n</think>\n\nParis is sunny.",
        "<｜end▁of▁sentence｜>",
        thinking="Easy.",
        content="Paris is sunny.",
        think=True,
        tools=False,
    ),
    Script(
        "deepseek-r1",
        f"Hm.\n</think>\n\n<｜tool▁calls▁begin｜>{DS_CALL}<｜tool▁calls▁end｜>",
        "<｜end▁of▁sentence｜>",
        content=f"<｜tool▁calls▁begin｜>{DS_CALL}<｜tool▁calls▁end｜>",
        thinking="Hm.",
        think=True,
        tools=False,
    ),
    # SentencePiece puts its prefix space after the control token: `[TOOL_CALLS]`, `▁[`, ... as the model writes it
    Script("mistral", f"[TOOL_CALLS][{WA}, {TA}]", "</s>", calls=[PARIS, CET]),
    Script("mistral", "[TOOL_CALLS]oops", "</s>", content="[TOOL_CALLS] oops"),
    Script(
        "mistral-small3.2",
        '[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}[TOOL_CALLS]get_time[ARGS]{"zone": "CET"}',
        "</s>",
        calls=[PARIS, CET],
    ),
    Script("granite3.3", f"<|tool_call|>[{WA}, {TA}]", "<|end_of_text|>", calls=[PARIS, CET]),
    Script("granite3.3", '<|tool_call|>[{"name": 3}]', "<|end_of_text|>", content='<|tool_call|>[{"name": 3}]'),
    Script(
        "gpt-oss",
        f'<|channel|>analysis<|message|>Need the weather.<|end|>{H_CALL}{{"city": "Paris"}}',
        "<|call|>",
        calls=[PARIS],
        thinking="Need the weather.",
    ),
    Script(
        "gpt-oss",
        "<|channel|>analysis<|message|>Easy.<|end|><|start|>assistant<|channel|>commentary"
        "<|message|>Checking. <|end|><|start|>assistant<|channel|>final<|message|>Sunny.",
        "<|return|>",
        thinking="Easy.",
        content="Checking. Sunny.",
    ),
    Script("gpt-oss", f'{H_CALL}{{"city": ', "<|call|>", content='{"city": '),  # arguments cut off: content
    Script(
        "gemma4",
        '<|tool_call>call:get_weather{city:<|"|>Paris<|"|>}<tool_call|><|tool_call>call:get_time'
        '{zone:<|"|>CET<|"|>}<tool_call|>',
        "<turn|>",
        calls=[PARIS, CET],
    ),
]
FAMILIES = sorted({s.family for s in SCRIPTS})


@dataclass
class Scripted:
    server: Server
    ids: dict[str, list[int]]  # script key -> its token ids, end token and leak included
    end_at: dict[str, int]  # script key -> where in its ids the end token is


def encode(tokenizer: Tokenizer, text: str) -> list[int]:
    return list(tokenizer.encode(text, add_special_tokens=False).ids)


@pytest.fixture(scope="module")
def scripted(tmp_path_factory: pytest.TempPathFactory, family_model: Callable[[str], Path]) -> Iterator[Scripted]:
    root = tmp_path_factory.mktemp("scripted")
    dirs = {name: family_model(name) for name in FAMILIES}
    ids: dict[str, list[int]] = {}
    end_at: dict[str, int] = {}
    tokenizers = {name: Tokenizer.from_file(str(folder / "tokenizer.json")) for name, folder in dirs.items()}
    for script in SCRIPTS:
        tokenizer = tokenizers[script.family]
        end = tokenizer.token_to_id(script.end)
        assert end is not None, script.end
        answer = encode(tokenizer, script.text)
        end_at[script.key] = len(answer)
        ids[script.key] = answer + [end] + encode(tokenizer, f" {LEAK}")
    path = root / "scripts.json"
    path.write_text(json.dumps(ids))
    home = root / "home"
    store = Store(home)
    for name, folder in dirs.items():  # in place, as pulled models are (no copy into blobs)
        register_directory(store, ModelName.parse(name), folder)
    # every family stays loaded: each test loads its model once (a tokenizer load is most of a test's time)
    env = {"MLX_SHIM_TEST_SCRIPTS": str(path), "OLLAMA_MAX_LOADED_MODELS": str(len(FAMILIES))}
    server = start_server(home, env)
    try:
        yield Scripted(server, ids, end_at)
    finally:
        stop_server(server)


def body(script: Script, stream: bool) -> dict[str, Any]:
    messages = [{"role": "user", "content": script.key}]
    out = {"model": script.family, "stream": stream, "messages": messages}
    if script.tools:
        out["tools"] = TOOLS
    out["options"] = {"temperature": 0}
    if script.think is not None:
        out["think"] = script.think
    return out


def ollama_chat(server: Server, script: Script, stream: bool) -> dict[str, Any]:
    """The answer as a client gets it: for a stream, the chunks' fields joined (calls in order)."""
    resp = httpx.post(server.url + "/api/chat", json=body(script, stream), timeout=120)
    assert resp.status_code == 200, resp.text
    if not stream:
        answer = resp.json()
        message = answer["message"]
        return {**message, "calls": message.get("tool_calls", []), "done": answer}
    chunks = [json.loads(line) for line in resp.text.splitlines()]
    for chunk in chunks[:-1]:  # markup never leaks into a streamed chunk either
        assert not chunk["done"]
    joined = {key: "".join(c["message"].get(key, "") for c in chunks) for key in ("content", "thinking")}
    return {**joined, "calls": [t for c in chunks for t in c["message"].get("tool_calls", [])], "done": chunks[-1]}


def check(answer: dict[str, Any], script: Script) -> None:
    assert answer["content"] == script.content
    assert answer.get("thinking", "") == script.thinking
    assert [{"name": c["function"]["name"], "arguments": c["function"]["arguments"]} for c in answer["calls"]] == (
        script.calls
    )
    assert [c["function"]["index"] for c in answer["calls"]] == list(range(len(script.calls)))
    assert all(c["id"].startswith("call_") for c in answer["calls"])
    assert answer["done"]["done_reason"] == "stop"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.key)
def test_api_chat(scripted: Scripted, script: Script) -> None:
    for stream in (False, True):
        answer = ollama_chat(scripted.server, script, stream)
        check(answer, script)
        # eval_count counts through the end token: the scripted tokens after it never ran
        assert answer["done"]["eval_count"] == scripted.end_at[script.key] + 1


@pytest.mark.parametrize("family", FAMILIES)
def test_openai_chat(scripted: Scripted, family: str) -> None:
    script = next(s for s in SCRIPTS if s.family == family)
    url = scripted.server.url + "/v1/chat/completions"
    payload = {k: v for k, v in body(script, False).items() if k not in ("think", "options")}
    payload["temperature"] = 0
    choice = httpx.post(url, json=payload, timeout=120).json()["choices"][0]
    message = choice["message"]
    assert message["content"] == script.content
    assert message.get("reasoning", "") == script.thinking
    calls = [{"name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"])}
             for c in message.get("tool_calls", [])]  # fmt: skip
    assert calls == script.calls
    assert choice["finish_reason"] == ("tool_calls" if script.calls else "stop")
    with httpx.stream("POST", url, json={**payload, "stream": True}, timeout=120) as resp:
        events = [json.loads(line[6:]) for line in resp.iter_lines() if line.startswith("data: {")]
    deltas = [e["choices"][0]["delta"] for e in events if e["choices"]]
    assert "".join(d.get("content") or "" for d in deltas) == script.content
    assert "".join(d.get("reasoning") or "" for d in deltas) == script.thinking
    streamed = [{"name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"])}
                for d in deltas for c in d.get("tool_calls", [])]  # fmt: skip
    assert streamed == script.calls
    assert events[-1]["choices"][0]["finish_reason"] == ("tool_calls" if script.calls else "stop")


def test_scripts_in_one_batch(scripted: Scripted) -> None:
    """Two scripted answers of one model decoding together in the batch (the hook follows each sequence)."""
    scripts = [s for s in SCRIPTS if s.family == "llama3.1"][:2]
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda s: ollama_chat(scripted.server, s, True), scripts * 2))
    for answer, script in zip(answers, scripts * 2, strict=True):
        check(answer, script)


def test_unscripted_request_samples_the_model(scripted: Scripted) -> None:
    """A request no script names is answered by the model itself: the random weights' greedy answer runs to
    num_predict (a script would have ended at its end token or EOS)."""
    request = {"model": "llama3.1", "stream": False, "messages": [{"role": "user", "content": "hello"}],
               "options": {"temperature": 0, "num_predict": 8, "seed": 1}}  # fmt: skip
    answer = httpx.post(scripted.server.url + "/api/chat", json=request, timeout=120).json()
    assert answer["done_reason"] == "length" and answer["eval_count"] == 8
