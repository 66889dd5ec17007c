"""Think and tool-call markers split across tokens: the scanner at every split point, the tool-call collector
with mlx-lm's own parsers, and the runner on the real tiny model with markers that span several tokens."""

from __future__ import annotations

import copy
import itertools
import threading
from pathlib import Path
from typing import Any

import pytest
from mlx_lm.tool_parsers import json_tools, mistral

from scripts.tiny_model import corpus
from shim.engine.markers import MarkerScanner, Segment
from shim.engine.parsers.collector import ToolCallCollector
from shim.engine.runner import run_completion
from shim.engine.types import Piece, ToolCall
from shim.options import resolve_options

MARKERS = ("<think>", "</think>", "<tool_call>", "</tool_call>", "[TOOL_CALLS]")
TEXT = 'a < b<think>plan</think>\n1 [2] <tool_call>{"name": "f"}</tool_call><tool_ca[TOOL_CALLS]x<'
EXPECTED = [
    Segment("a < b"), Segment("<think>", True), Segment("plan"), Segment("</think>", True), Segment("\n1 [2] "),
    Segment("<tool_call>", True), Segment('{"name": "f"}'), Segment("</tool_call>", True), Segment("<tool_ca"),
    Segment("[TOOL_CALLS]", True), Segment("x<"),
]  # fmt: skip


def scan(pieces: list[str]) -> list[Segment]:
    """Feed the pieces, check nothing emitted could still be a marker's start, merge adjacent text."""
    scanner = MarkerScanner(MARKERS)
    out: list[Segment] = []
    for piece in pieces:
        segments = scanner.feed(piece)
        if segments and not segments[-1].marker:  # what may start a marker is held back, not emitted
            text = segments[-1].text
            tails = [text[k:] + scanner.pending for k in range(len(text))]
            assert not any(m.startswith(t) for m in MARKERS for t in tails), pieces
        out += segments
    out.append(Segment(scanner.flush()))
    merged: list[Segment] = []
    for seg in out:
        if merged and not seg.marker and not merged[-1].marker:
            merged[-1] = Segment(merged[-1].text + seg.text)
        elif seg.text:
            merged.append(seg)
    return merged


def test_scanner_at_every_split_point() -> None:
    for i in range(len(TEXT) + 1):
        assert scan([TEXT[:i], TEXT[i:]]) == EXPECTED, i


def test_scanner_at_every_pair_of_split_points() -> None:
    for i, j in itertools.combinations(range(len(TEXT) + 1), 2):
        assert scan([TEXT[:i], TEXT[i:j], TEXT[j:]]) == EXPECTED, (i, j)


def test_scanner_one_character_at_a_time_holds_back_marker_starts() -> None:
    scanner = MarkerScanner(MARKERS)
    emitted = [seg for ch in "ok <tool_call>{}</tool_call>" for seg in scanner.feed(ch)]
    assert [s.text for s in emitted if not s.marker] == ["o", "k", " ", "{", "}"]
    assert [s.text for s in emitted if s.marker] == ["<tool_call>", "</tool_call>"]
    assert MarkerScanner(()).feed("<think>") == [Segment("<think>")]


def collector(module: Any, tools: list[dict[str, Any]] | None = None) -> ToolCallCollector:
    tools = tools if tools is not None else [{"type": "function"}]
    return ToolCallCollector(module.parse_tool_call, module.tool_call_start, module.tool_call_end, tools)


def test_collector_parses_with_the_family_parser() -> None:
    calls = collector(json_tools)
    assert calls.markers == ("<tool_call>", "</tool_call>")
    assert calls.marker("<tool_call>") == [] and calls.collecting
    assert calls.feed('\n{"name": "get_weather", ') == []
    assert calls.feed('"arguments": "{\\"city\\": \\"Paris\\"}"}\n') == []  # string arguments are decoded
    (piece,) = calls.feed("</tool_call>", marker=True)
    assert not calls.collecting
    (call,) = piece.tool_calls
    assert call == ToolCall("get_weather", {"city": "Paris"}, index=0)  # unnamed: the service gives the id
    calls.marker("<tool_call>")
    calls.feed("</tool_call>")  # the text, not the marker: still collecting
    assert calls.collecting
    assert calls.feed("</tool_call>", marker=True) == [Piece(content="<tool_call></tool_call></tool_call>")]
    assert calls.marker("</tool_call>") is None  # an end marker outside a call is not a call's


def test_collector_without_end_marker_parses_at_the_end() -> None:
    calls = collector(mistral)
    assert calls.markers == ("[TOOL_CALLS]",)
    assert calls.marker("[TOOL_CALLS]") == []
    calls.feed('get_weather[ARGS]{"city": "Paris"}')
    calls.feed('add[ARGS]{"a": 1, "b": 2}')
    (piece,) = calls.flush()
    assert piece.tool_calls == [
        ToolCall("get_weather", {"city": "Paris"}, index=0),
        ToolCall("add", {"a": 1, "b": 2}, index=1),
    ]


def test_collector_incomplete_call_is_content_and_no_tools_means_no_markers() -> None:
    calls = collector(json_tools)
    calls.marker("<tool_call>")
    calls.feed('{"name": "f", "argu')
    assert calls.flush() == [Piece(content='<tool_call>{"name": "f", "argu')]
    assert collector(json_tools, tools=[]).markers == ()


@pytest.fixture(scope="module")
def loaded(tiny_model_dir: Path) -> Any:
    import mlx_lm

    return mlx_lm.load(str(tiny_model_dir))


def generate(
    loaded: Any, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, think: bool, **markers: str
) -> list[Piece]:
    """The real runner on the real model, with the tokenizer's markers replaced by multi-token ones."""
    model, tokenizer = loaded
    tokenizer = copy.copy(tokenizer)
    for name, value in markers.items():
        setattr(tokenizer, f"_{name}", value)
    prompt = tokenizer.apply_chat_template(messages, tools=tools, add_generation_prompt=True, enable_thinking=think)
    opts = resolve_options(4096, {}, {"temperature": 0, "num_predict": 64})
    pieces: list[Piece] = []
    run_completion(model, tokenizer, list(prompt), opts, think=think, shift=True, tools=tools, emit=pieces.append,
                   cancelled=threading.Event())  # fmt: skip
    return pieces


def test_runner_with_multi_token_markers(loaded: Any) -> None:
    """`<tool_call>` + newline and newline + `</tool_call>` (and the same for think) span two tokens or end
    inside one: the call is still parsed, the thinking split, and no piece carries markup."""
    tool = next(t for t in corpus.TOOLS if t.name == "get_weather")
    markers = {"tool_call_start": "<tool_call>\n", "tool_call_end": "\n</tool_call>",
               "think_start": "<think>\n", "think_end": "\n</think>"}  # fmt: skip
    _, tokenizer = loaded
    assert len(tokenizer.encode(markers["tool_call_start"], add_special_tokens=False)) > 1
    messages = [{"role": "user", "content": "What's the weather in Paris?"}]
    pieces = generate(loaded, messages, [tool.schema()], True, **markers)
    assert "".join(p.thinking for p in pieces) == corpus.TOOL_THINK
    assert [c for p in pieces for c in p.tool_calls] == [ToolCall("get_weather", {"city": "Paris"}, index=0)]
    assert "".join(p.content for p in pieces).strip() == ""
    assert not any("<" in p.content + p.thinking for p in pieces)
