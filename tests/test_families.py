"""Every family of the matrix (tests/families.py) through the real server, as a pulled model: the prompt the
server renders with the family's own template (read back with Ollama's `_debug_render_only`) puts the tool
schema, tool results, earlier thinking and the think switch where the family's format says
(tests/family_formats.py); capabilities are what works; images are refused as Ollama refuses them; and
generation ends at each of the family's end tokens (forced through the real per-token pipeline by the
test-only scripts hook, shim/engine/scripted.py). Streamed and not.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shim import commands
from shim.client import Client
from tests.conftest import Server, start_server, stop_server
from tests.families import BY_NAME, FAMILIES, vocabulary
from tests.family_formats import FORMATS

TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "WEATHER-DESCRIPTION", "parameters": {
    "type": "object", "properties": {"city": {"type": "string", "description": "CITY-DESCRIPTION"}},
    "required": ["city"]}}}]  # fmt: skip
CALL = {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
NO_VISION = "this model is missing data required for image input"
PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
ANSWER = "Sun"
ANSWER_TOKENS = (ANSWER, "▁" + ANSWER, "Ġ" + ANSWER)  # as byte-level and SentencePiece vocabularies spell it


def end_key(family: str, token: str) -> str:
    return f"end {family} {token}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, family_model: Callable[[str], Path]) -> Iterator[Server]:
    """One server; every family's model built first, so the scripts (the answer ANSWER, one end token, then
    more that must never come) can name each family's token ids."""
    scripts: dict[str, list[int]] = {}
    for family in FAMILIES:
        ids = vocabulary(family_model(family.name) / "tokenizer.json")
        answer = next(ids[t] for t in ANSWER_TOKENS if t in ids)  # the word as this vocabulary spells it
        for token in family.eos:
            scripts[end_key(family.name, token)] = [answer, ids[token], answer, answer]
    home = tmp_path_factory.mktemp("families-home")
    (home / "scripts.json").write_text(json.dumps(scripts))
    srv = start_server(home, {"MLX_SHIM_TEST_SCRIPTS": str(home / "scripts.json")})
    yield srv
    stop_server(srv)


@pytest.fixture(scope="module", params=[f.name for f in FAMILIES])
def family(request: pytest.FixtureRequest, server: Server, family_model: Callable[[str], Path]) -> Iterator[str]:
    """The family's model, created in the server's store from its directory by the CLI's own create (run
    here, not as a process: a CLI start costs seconds), loaded while its tests run and deleted after."""
    name: str = request.param
    modelfile = server.home / f"{name}.Modelfile"
    modelfile.write_text(f"FROM {family_model(name)}\n")
    commands.create(Client(server.url), name, modelfile, None, io.StringIO())
    yield name
    httpx.request("DELETE", server.url + "/api/delete", json={"model": name}, timeout=60)


def post(server: Server, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(server.url + path, json=body, timeout=300)


def chat(server: Server, body: dict[str, Any], stream: bool = False) -> tuple[int, dict[str, Any]]:
    """The answer (a streamed one folded into one: content and thinking joined, the last chunk's fields)."""
    response = post(server, "/api/chat", {**body, "stream": stream})
    if not stream or response.status_code != 200:
        return response.status_code, response.json()
    chunks = [json.loads(line) for line in response.text.splitlines() if line]
    folded = dict(chunks[-1])
    for key in ("content", "thinking"):
        folded.setdefault("message", {})[key] = "".join(c.get("message", {}).get(key, "") for c in chunks)
    return 200, folded


def render(server: Server, name: str, messages: list[dict[str, Any]], stream: bool = False, **extra: Any) -> str:
    status, out = chat(server, {"model": name, "messages": messages, "_debug_render_only": True, **extra}, stream)
    assert status == 200, out
    return str(out["_debug_info"]["rendered_template"])


def in_order(text: str, parts: tuple[str, ...]) -> None:
    at = 0
    for part in parts:
        found = text.find(part, at)
        assert found >= 0, f"{part!r} not after position {at} in {text!r}"
        at = found + len(part)


def test_capabilities_are_what_works(server: Server, family: str) -> None:
    fmt = FORMATS[family]
    show = post(server, "/api/show", {"model": family}).json()
    assert tuple(show["capabilities"]) == fmt.capabilities
    full = f"registry.ollama.ai/library/{family}:latest"
    user = [{"role": "user", "content": "USER-TEXT"}]
    if "tools" not in fmt.capabilities:
        status, out = chat(server, {"model": family, "messages": user, "tools": TOOLS})
        assert (status, out) == (400, {"error": f"{full} does not support tools"})
    if "thinking" not in fmt.capabilities:
        status, out = chat(server, {"model": family, "messages": user, "think": True})
        assert (status, out) == (400, {"error": f'"{family}" does not support thinking'})
    infill = post(server, "/api/generate", {"model": family, "prompt": "def f(", "suffix": "\n", "raw": False,
                                            "_debug_render_only": True})  # fmt: skip
    if "insert" in fmt.capabilities:
        assert infill.status_code == 200
        rendered = infill.json()["_debug_info"]["rendered_template"]
        assert "def f(" in rendered and rendered != "def f("  # framed by the vocabulary's FIM tokens
    else:
        assert infill.json() == {"error": f"{full} does not support insert"}


@pytest.mark.parametrize("stream", [False, True])
def test_tool_schema_where_the_format_puts_it(server: Server, family: str, stream: bool) -> None:
    fmt = FORMATS[family]
    messages = [{"role": "system", "content": "SYS-TEXT"}, {"role": "user", "content": "USER-TEXT"}]
    if not fmt.tools:
        status, _ = chat(server, {"model": family, "messages": messages, "tools": TOOLS}, stream)
        assert status == 400
        return
    in_order(render(server, family, messages, stream, tools=TOOLS), fmt.tools)


@pytest.mark.parametrize("family", [name for name, f in FORMATS.items() if f.tools], indirect=True)
@pytest.mark.parametrize("by", ["name", "id"])
def test_tool_result_in_the_tool_role(server: Server, family: str, by: str) -> None:
    """A result sent back by tool name (Ollama's `tool_name`) or by call id (OpenAI's `tool_call_id`, our
    call_xxxxxxxx) renders in the family's tool role, answering its call."""
    fmt = FORMATS[family]
    call: dict[str, Any] = dict(CALL)
    result = {"role": "tool", "content": "SUNNY-42"}
    if by == "name":
        result["tool_name"] = "get_weather"
    else:
        call["id"] = result["tool_call_id"] = "call_ab12cd34"
    messages = [{"role": "user", "content": "USER-TEXT"}, {"role": "assistant", "content": "", "tool_calls": [call]},
                result]  # fmt: skip
    rendered = render(server, family, messages, tools=TOOLS)
    answered = re.search(fmt.result, rendered)
    assert answered, f"{fmt.result!r} not in {rendered!r}"
    if fmt.call:
        made = re.search(fmt.call, rendered)
        assert made and made.group("id") == answered.group("id"), rendered


def test_earlier_thinking_is_dropped(server: Server, family: str) -> None:
    fmt = FORMATS[family]
    messages = [{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1", "thinking": "OLD-THOUGHT"},
                {"role": "user", "content": "Q2"}]  # fmt: skip
    rendered = render(server, family, messages)
    assert "OLD-THOUGHT" not in rendered and "A1" in rendered
    if fmt.think_block:  # a client that sends the think block back in the content
        messages[1] = {"role": "assistant", "content": "<think>OLD-THOUGHT</think>A1"}
        rendered = render(server, family, messages)
        assert "OLD-THOUGHT" not in rendered and "A1" in rendered


def test_think_switch_and_levels(server: Server, family: str) -> None:
    fmt = FORMATS[family]
    user = [{"role": "user", "content": "Q1"}]
    off = render(server, family, user, think=False)
    if fmt.think_off:
        assert off.endswith(fmt.think_off), off
    if "thinking" not in fmt.capabilities:  # unset is off: the template's no-think branch too
        assert render(server, family, user) == off
        return
    assert render(server, family, user, think=True).endswith(fmt.think_on)
    assert render(server, family, user).endswith(fmt.think_on)  # unset think is on for a thinking model
    if fmt.levels:
        levels = {"low": "low", "medium": "medium", "high": "high", "max": "high"}  # harmony knows no "max"
        for level, shown in levels.items():
            assert f"Reasoning: {shown}\n" in render(server, family, user, think=level)
        assert "Reasoning: medium\n" in render(server, family, user, think=True)


def test_system_message_renders(server: Server, family: str) -> None:
    """Even where the template refuses a system role (Gemma 2), the system text reaches the prompt first."""
    rendered = render(server, family, [{"role": "system", "content": "SYS-TEXT"}, {"role": "user", "content": "Q1"}])
    assert rendered.index("SYS-TEXT") < rendered.index("Q1")


def test_images_refused_as_ollama(server: Server, family: str) -> None:
    message = {"role": "user", "content": "what is this?", "images": [PIXEL]}
    status, out = chat(server, {"model": family, "messages": [message]})
    assert (status, out) == (400, {"error": NO_VISION})
    generate = post(server, "/api/generate", {"model": family, "prompt": "what is this?", "images": [PIXEL]})
    assert (generate.status_code, generate.json()) == (400, {"error": NO_VISION})


@pytest.mark.parametrize("stream", [False, True])
def test_generation_ends_at_every_end_token(server: Server, family: str, stream: bool) -> None:
    """Each of generation_config's end tokens ends the answer: the text scripted after it never comes."""
    for token in BY_NAME[family].eos:
        messages = [{"role": "user", "content": end_key(family, token)}]
        status, out = chat(server, {"model": family, "messages": messages, "options": {"num_predict": 32}}, stream)
        assert status == 200, out
        said = out["message"].get("thinking", "") + out["message"]["content"]
        assert said.strip() == ANSWER and out["done_reason"] == "stop", (token, out)


@pytest.mark.parametrize("stream", [False, True])
def test_random_model_answers(server: Server, family: str, stream: bool) -> None:
    """An unscripted request runs the family's random-weight model: it answers and stops at num_predict."""
    body = {"model": family, "messages": [{"role": "user", "content": "hi"}], "options": {"num_predict": 3}}
    status, out = chat(server, {**body, "think": False}, stream)
    assert status == 200, out
    assert out["done"] is True and out["eval_count"] <= 3


@pytest.mark.parametrize("family", ["qwen3", "qwen3.5"], indirect=True)
def test_prompt_cache_reuse_answers_as_a_cold_start(server: Server, family: str) -> None:
    """Qwen3.5's linear-attention layers keep a state that cannot be trimmed back a token (a hybrid cache):
    a prompt asked again, or a chat's next turn, must answer as it does from a cold start (Qwen3, whose cache
    trims, alongside)."""
    greedy = {"temperature": 0, "num_predict": 4}

    def ask(messages: list[dict[str, Any]]) -> str:
        status, out = chat(server, {"model": family, "messages": messages, "think": False, "options": greedy})
        assert status == 200, out
        return str(out["message"]["content"])

    def unload() -> None:
        post(server, "/api/generate", {"model": family, "keep_alive": 0})

    first = [{"role": "user", "content": "Tell me about the sea."}]
    unload()
    cold = ask(first)
    assert ask(first) == cold  # the same prompt again: all of it is in the prompt cache
    turn = [*first, {"role": "assistant", "content": cold}, {"role": "user", "content": "And the sky?"}]
    warm = ask(turn)  # the first turn's cache reused
    unload()
    assert ask(turn) == warm
