"""Every family's answers in its real markup, scripted token by token (shim/engine/scripted.py), through the
real server: `/api/chat` streamed and not, and `/v1/chat/completions` streamed and not. One test list for
every family of the matrix (tests/families.py) and phi-4-mini:

    answer      plain text, ending at each of the family's end tokens (the tokens scripted after it never run)
    calls       tool calls arrive as `tool_calls` (several in one answer where the format allows), no markup
                in `content`
    malformed   call markup that does not parse arrives as `content`, markup included, never dropped
    thinking    the family's reasoning arrives as `thinking`, the rest as `content`

A family without a tool-call format or without thinking has no script of that kind: NOT_APPLICABLE says why
(and test_every_family_has_the_whole_list checks that each family × kind has a script or a reason).

Models are random-weight models with the families' real tokenizers and templates: the scripted tokens force
the output, so the weights do not matter. Each token goes through the per-token pipeline one at a time
(runner.Completion: detokenizer, end tokens, stops, markers, thinking split, the family's format);
tests/test_parsers.py cuts the same markup at every character.
"""

from __future__ import annotations

import io
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
from shim import commands
from shim.client import Client
from tests.conftest import Server, start_server, stop_server
from tests.families import BY_NAME, FAMILIES, OUTPUT_ONLY


def tool(name: str, prop: str) -> dict[str, Any]:
    parameters = {"type": "object", "properties": {prop: {"type": "string"}}, "required": [prop]}
    return {"type": "function", "function": {"name": name, "description": name, "parameters": parameters}}


TOOLS = [tool("get_weather", "city"), tool("get_time", "zone")]
PARIS = {"name": "get_weather", "arguments": {"city": "Paris"}}
CET = {"name": "get_time", "arguments": {"zone": "CET"}}
WA = '{"name": "get_weather", "arguments": {"city": "Paris"}}'
TA = '{"name": "get_time", "arguments": {"zone": "CET"}}'
LEAK = "LEAKED"  # scripted after the end token: must never be generated
KINDS = ("answer", "calls", "malformed", "thinking")
NAMES = [f.name for f in FAMILIES + OUTPUT_ONLY]

# DeepSeek-R1's own template renders no tools; served with tools as Ollama's library serves it, by a TEMPLATE
# that does (the family's format still comes from the tokenizer's template: its `<｜tool▁calls▁begin｜>`).
R1_TOOLS = "deepseek-r1-tools"
R1_TEMPLATE = (
    "{{ if .Tools }}Tools:{{ range .Tools }} {{ .Function.Name }}{{ end }}\n{{ end }}"
    '{{ range .Messages }}{{ if eq .Role "user" }}<｜User｜>{{ .Content }}'
    '{{ else if eq .Role "assistant" }}<｜Assistant｜>{{ .Content }}<｜end▁of▁sentence｜>{{ end }}{{ end }}'
    "<｜Assistant｜>{{ if .Think }}<think>\n{{ end }}"
)

# SmolLM2 as Ollama's library serves it (the built-in smollm2:135m): its GGUF template renders no tools, the
# library's Go template does and asks for `<tool_call>[...]</tool_call>`; the calls are read with the tag
# Ollama derives from that template (shim/engine/parsers/template_calls.py). With Llama 3.1's library
# template instead, the tag is Ollama's `{`: a bare JSON call opening the answer.
SMOL_TOOLS = "smollm2-tools"
SMOL_JSON = "smollm2-json"
GO_TEMPLATES = {
    SMOL_TOOLS: Path(__file__).parents[1] / "registry" / "smollm2_template.txt",
    SMOL_JSON: Path(__file__).parent / "data" / "ollama_templates" / "llama3.1.gotmpl",
}
SMOL_CALLS = f"<tool_call>[\n{WA},\n{TA}\n]</tool_call>"
SMOL_BAD = "<tool_call>[{not json}]</tool_call>"


@dataclass
class Script:
    family: str  # whose tokenizer spells it (tests/families.py)
    kind: str  # one of KINDS
    text: str  # the answer in the family's markup, up to its end
    end: str  # the end token that must end generation
    calls: list[dict[str, Any]] = field(default_factory=list)
    content: str = ""
    thinking: str = ""
    think: bool | None = None
    model: str = ""  # the model asked, if not the family's own

    @property
    def key(self) -> str:
        return f"{self.model or self.family} {self.kind} {self.end}"


def answers(family: str, text: str = "Sunny.") -> list[Script]:
    """The plain answer once per end token of the family (think off: a template that opens the think block
    then closes it, so the answer is content). SentencePiece vocabularies with a prefix space (Mistral v0.3,
    Phi-3.5's) spell the first word `▁Sunny`, which decodes with its space as the answer's first token."""
    content = " Sunny." if family in ("mistral", "phi3.5") else "Sunny."
    return [Script(family, "answer", text, end, content=content, think=False) for end in BY_NAME[family].eos]


QWEN_CALLS = f"<tool_call>\n{WA}\n</tool_call>\n<tool_call>\n{TA}\n</tool_call>"
QWEN_BAD = "<tool_call>\n{not json}\n</tool_call>"
XML_CALL = "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n</function>\n</tool_call>"
XML_CALL2 = "<tool_call>\n<function=get_time>\n<parameter=zone>\nCET\n</parameter>\n</function>\n</tool_call>"
LLAMA_CALLS = WA.replace("arguments", "parameters") + "; " + TA.replace("arguments", "parameters")
LLAMA_BAD = '{"name": "get_weather", "parameters": {"city": '
MISTRAL_CALLS = f"[TOOL_CALLS][{WA}, {TA}]"
TEKKEN_CALLS = '[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}[TOOL_CALLS]get_time[ARGS]{"zone": "CET"}'
G_CALLS = (
    '<|tool_call>call:get_weather{city:<|"|>Paris<|"|>}<tool_call|>'
    '<|tool_call>call:get_time{zone:<|"|>CET<|"|>}<tool_call|>'
)
G_BAD = "<|tool_call>call:get_weather{city:Paris}<tool_call|>"
DS_CALLS = (
    '<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{"city": "Paris"}\n```'
    '<｜tool▁call▁end｜>\n<｜tool▁call▁begin｜>get_time<｜tool▁sep｜>{"zone": "CET"}<｜tool▁call▁end｜>'
    "<｜tool▁calls▁end｜>"
)
DS_BAD = '<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{"city": '
H_CALL = "<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>"
H_THINK = "<|channel|>analysis<|message|>Need the weather.<|end|>"

SCRIPTS: list[Script] = [
    *answers("qwen2.5"),
    Script("qwen2.5", "calls", QWEN_CALLS, "<|im_end|>", calls=[PARIS, CET]),
    Script("qwen2.5", "malformed", QWEN_BAD, "<|im_end|>", content=QWEN_BAD),
    *answers("qwen3"),
    Script("qwen3", "calls", QWEN_CALLS, "<|im_end|>", calls=[PARIS, CET], think=False),
    Script("qwen3", "malformed", QWEN_BAD, "<|endoftext|>", content=QWEN_BAD, think=False),
    Script(
        "qwen3",
        "thinking",
        f"<think>\nPlan.\n</think>\n\n{QWEN_CALLS}",
        "<|im_end|>",
        calls=[PARIS, CET],
        thinking="Plan.",
        think=True,
    ),
    # Qwen3.5: mlx-lm's qwen3_coder parser (XML calls); its template opens the think block itself
    *answers("qwen3.5"),
    Script("qwen3.5", "calls", f"{XML_CALL}\n{XML_CALL2}", "<|im_end|>", calls=[PARIS, CET], think=False),
    Script(
        "qwen3.5",
        "malformed",
        "<tool_call>\noops\n</tool_call>",
        "<|im_end|>",
        content="<tool_call>\noops\n</tool_call>",
        think=False,
    ),
    Script(
        "qwen3.5",
        "thinking",
        f"Plan.\n</think>\n\n{XML_CALL}",
        "<|endoftext|>",
        calls=[PARIS],
        thinking="Plan.",
        think=True,
    ),
    *(
        script
        for name in ("llama3.1", "llama3.2", "llama3.3")
        for script in [
            *answers(name),
            Script(name, "calls", LLAMA_CALLS, "<|eot_id|>", calls=[PARIS, CET]),
            Script(name, "calls", f"<|python_tag|>{WA}", "<|eom_id|>", calls=[PARIS]),
            Script(name, "malformed", LLAMA_BAD, "<|end_of_text|>", content=LLAMA_BAD),
        ]
    ),
    # SentencePiece puts its prefix space after the control token: `[TOOL_CALLS]`, `▁oops` as the model writes it
    *answers("mistral"),
    Script("mistral", "calls", MISTRAL_CALLS, "</s>", calls=[PARIS, CET]),
    Script("mistral", "malformed", "[TOOL_CALLS]oops", "</s>", content="[TOOL_CALLS] oops"),
    *answers("mistral-nemo"),
    Script("mistral-nemo", "calls", MISTRAL_CALLS, "</s>", calls=[PARIS, CET]),
    Script("mistral-nemo", "malformed", "[TOOL_CALLS]oops", "</s>", content="[TOOL_CALLS]oops"),
    *answers("mistral-small3.2"),
    Script("mistral-small3.2", "calls", TEKKEN_CALLS, "</s>", calls=[PARIS, CET]),
    Script(
        "mistral-small3.2",
        "malformed",
        "[TOOL_CALLS]get_weather[ARGS]{oops",
        "</s>",
        content="[TOOL_CALLS]get_weather[ARGS]{oops",
    ),
    *answers("gemma2"),
    *answers("gemma3"),
    *answers("gemma4"),
    Script("gemma4", "calls", G_CALLS, "<|tool_response>", calls=[PARIS, CET], think=False),
    Script("gemma4", "malformed", G_BAD, "<turn|>", content=G_BAD, think=False),
    Script(
        "gemma4",
        "thinking",
        f"<|channel>thought\nNeed both.<channel|>{G_CALLS}",
        "<|tool_response>",
        calls=[PARIS, CET],
        thinking="Need both.",
        think=True,
    ),
    Script(
        "gemma4",
        "thinking",
        "<|channel>thought\nEasy.\n<channel|>\n\nSunny.",
        "<turn|>",
        content="Sunny.",
        thinking="Easy.",
        think=True,
    ),
    Script(
        "gemma4", "thinking", "<|channel>thought\nEasy.\n<channel|>\n\nSunny.", "<eos>", content="Sunny.", think=False
    ),  # a channel written though thinking is off is dropped, as Ollama drops it
    *answers("phi3.5"),
    *answers("phi4"),
    *answers("phi4-mini"),
    Script("phi4-mini", "calls", f"functools[{WA}, {TA}]", "<|end|>", calls=[PARIS, CET]),
    Script("phi4-mini", "malformed", 'functools[{"name": 3}]', "<|endoftext|>", content='functools[{"name": 3}]'),
    # R1's template ends the prompt in `<think>`
    *answers("deepseek-r1"),
    Script(
        "deepseek-r1",
        "thinking",
        "Easy.\n</think>\n\nSunny.",
        "<｜end▁of▁sentence｜>",
        thinking="Easy.",
        content="Sunny.",
        think=True,
    ),
    Script(
        "deepseek-r1",
        "calls",
        f"Hm.\n</think>\n\n{DS_CALLS}",
        "<｜end▁of▁sentence｜>",
        calls=[PARIS, CET],
        thinking="Hm.",
        think=True,
        model=R1_TOOLS,
    ),
    Script(
        "deepseek-r1",
        "malformed",
        f"Hm.\n</think>\n\n{DS_BAD}",
        "<｜end▁of▁sentence｜>",
        content=DS_BAD,
        thinking="Hm.",
        think=True,
        model=R1_TOOLS,
    ),
    *answers("gpt-oss", "<|channel|>final<|message|>Sunny."),
    Script(
        "gpt-oss",
        "calls",
        f'{H_THINK}{H_CALL}{{"city": "Paris"}}',
        "<|call|>",
        calls=[PARIS],
        thinking="Need the weather.",
    ),
    Script("gpt-oss", "malformed", f'{H_CALL}{{"city": ', "<|call|>", content='{"city": '),  # arguments cut off
    Script(
        "gpt-oss",
        "thinking",
        "<|channel|>analysis<|message|>Easy.<|end|><|start|>assistant<|channel|>commentary"
        "<|message|>Checking. <|end|><|start|>assistant<|channel|>final<|message|>Sunny.",
        "<|return|>",
        thinking="Easy.",
        content="Checking. Sunny.",
    ),
    *answers("smollm2"),
    Script("smollm2", "calls", SMOL_CALLS, "<|im_end|>", calls=[PARIS, CET], model=SMOL_TOOLS),
    Script("smollm2", "malformed", SMOL_BAD, "<|im_end|>", content=SMOL_BAD, model=SMOL_TOOLS),
    Script("smollm2", "answer", "Sunny.", "<|im_end|>", content="Sunny.", model=SMOL_TOOLS),  # no call markup
    Script("smollm2", "calls", WA.replace("arguments", "parameters"), "<|im_end|>", calls=[PARIS], model=SMOL_JSON),
    *answers("granite3.3"),
    Script("granite3.3", "calls", f"<|tool_call|>[{WA}, {TA}]", "<|end_of_text|>", calls=[PARIS, CET]),
    Script(
        "granite3.3", "malformed", '<|tool_call|>[{"name": 3}]', "<|end_of_text|>", content='<|tool_call|>[{"name": 3}]'
    ),
]
# Models whose template renders no tools (the server refuses a request with tools: tests/test_families.py);
# DeepSeek-R1 and SmolLM2 get tools with a Go template (R1_TOOLS, SMOL_TOOLS).
NO_TOOLS = {"gemma2", "gemma3", "phi3.5", "phi4", "smollm2", "deepseek-r1"}
_NO_TOOLS = "its template renders no tools and it has no tool-call format: tools are refused"
_NO_THINKING = "no thinking capability: the server refuses `think` (tests/test_families.py)"
NOT_APPLICABLE: dict[tuple[str, str], str] = {
    **{(name, kind): _NO_TOOLS for name in NO_TOOLS - {"deepseek-r1", "smollm2"} for kind in ("calls", "malformed")},
    **{(name, "thinking"): _NO_THINKING for name in ("qwen2.5", "llama3.1", "llama3.2", "llama3.3", "mistral",
       "mistral-nemo", "mistral-small3.2", "gemma2", "gemma3", "phi3.5", "phi4", "phi4-mini", "smollm2",
       "granite3.3")},
}  # fmt: skip
# One call per answer: harmony's `<|call|>` ends the turn after each call (the server asks again with the result).
SINGLE_CALL = {"gpt-oss"}


@dataclass
class Scripted:
    server: Server
    end_at: dict[str, int]  # script key -> where in its ids the end token is


def encode(tokenizer: Tokenizer, text: str) -> list[int]:
    return list(tokenizer.encode(text, add_special_tokens=False).ids)


@pytest.fixture(scope="module")
def scripted(tmp_path_factory: pytest.TempPathFactory, family_model: Callable[[str], Path]) -> Iterator[Scripted]:
    root = tmp_path_factory.mktemp("scripted")
    dirs = {name: family_model(name) for name in NAMES}
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
    env = {"MLX_SHIM_TEST_SCRIPTS": str(path), "OLLAMA_MAX_LOADED_MODELS": str(len(NAMES) + 1 + len(GO_TEMPLATES))}
    server = start_server(home, env)
    try:
        modelfile = home / "r1-tools.Modelfile"
        modelfile.write_text(f'FROM deepseek-r1\nTEMPLATE """{R1_TEMPLATE}"""\n')
        commands.create(Client(server.url), R1_TOOLS, modelfile, None, io.StringIO())
        for name, template in GO_TEMPLATES.items():
            modelfile = home / f"{name}.Modelfile"
            modelfile.write_text(f'FROM smollm2\nTEMPLATE """{template.read_text(encoding="utf-8")}"""\n')
            commands.create(Client(server.url), name, modelfile, None, io.StringIO())
        yield Scripted(server, end_at)
    finally:
        stop_server(server)


def body(script: Script, stream: bool) -> dict[str, Any]:
    model = script.model or script.family
    out: dict[str, Any] = {"model": model, "stream": stream, "messages": [{"role": "user", "content": script.key}],
                           "options": {"temperature": 0}}  # fmt: skip
    if model not in NO_TOOLS:
        out["tools"] = TOOLS
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
    for chunk in chunks[:-1]:
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


def test_every_family_has_the_whole_list() -> None:
    """Each family × kind is scripted or says why it does not apply; several calls wherever the format can."""
    scripted = {(s.family, s.kind) for s in SCRIPTS}
    for name in NAMES:
        for kind in KINDS:
            assert ((name, kind) in scripted) != ((name, kind) in NOT_APPLICABLE), (name, kind)
        ends = {s.end for s in SCRIPTS if s.family == name and s.kind == "answer"}
        assert ends == set(BY_NAME[name].eos), name
        if (name, "calls") in scripted and name not in SINGLE_CALL:
            assert any(len(s.calls) > 1 for s in SCRIPTS if s.family == name), name


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.key)
def test_api_chat(scripted: Scripted, script: Script) -> None:
    for stream in (False, True):
        answer = ollama_chat(scripted.server, script, stream)
        check(answer, script)
        # eval_count counts through the end token: the scripted tokens after it never ran
        assert answer["done"]["eval_count"] == scripted.end_at[script.key] + 1


def _openai_calls(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"])} for c in calls]


@pytest.mark.parametrize("script", [s for s in SCRIPTS if s.kind != "answer"], ids=lambda s: s.key)
def test_openai_chat(scripted: Scripted, script: Script) -> None:
    url = scripted.server.url + "/v1/chat/completions"
    payload = {k: v for k, v in body(script, False).items() if k not in ("think", "options")}
    payload["temperature"] = 0
    if script.think is False:  # OpenAI's reasoning switch (unset: on for a thinking model)
        payload["reasoning_effort"] = "none"
    choice = httpx.post(url, json=payload, timeout=120).json()["choices"][0]
    message = choice["message"]
    assert message["content"] == script.content
    assert message.get("reasoning", "") == script.thinking
    assert _openai_calls(message.get("tool_calls", [])) == script.calls
    assert choice["finish_reason"] == ("tool_calls" if script.calls else "stop")
    with httpx.stream("POST", url, json={**payload, "stream": True}, timeout=120) as resp:
        events = [json.loads(line[6:]) for line in resp.iter_lines() if line.startswith("data: {")]
    deltas = [e["choices"][0]["delta"] for e in events if e["choices"]]
    assert "".join(d.get("content") or "" for d in deltas) == script.content
    assert "".join(d.get("reasoning") or "" for d in deltas) == script.thinking
    assert _openai_calls([c for d in deltas for c in d.get("tool_calls", [])]) == script.calls
    assert events[-1]["choices"][0]["finish_reason"] == ("tool_calls" if script.calls else "stop")


def test_scripts_in_one_batch(scripted: Scripted) -> None:
    """Two scripted answers of one model decoding together in the batch (the hook follows each sequence)."""
    scripts = [s for s in SCRIPTS if s.family == "llama3.1" and s.kind == "calls"]
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
