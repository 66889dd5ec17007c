"""Calls written as JSON values: after a start marker (Granite's `<|tool_call|>[...]`, phi-4-mini's
`functools[...]`, Llama 3.1's `<|python_tag|>{...}`, a Go template's tag: `template_calls`), or with no marker
at all as the answer's first JSON object (Llama 3.x: `{"name": "f", "parameters": {...}}`, several separated
by `;`). An end marker (`</tool_call>`) after a call is dropped; the calls go on after it if another follows.

Each call goes out as soon as its JSON value closes, so a streamed answer gets its calls one by one. The
tag-less form follows Ollama's `tools.Parser` with the `{` (or `[`) tag: only an answer whose first
non-space character is that one can be a call, and only a call to one of the request's tools counts, so an answer that
is JSON for the user stays content. Whatever does not parse goes out as content, markup included.
"""

from __future__ import annotations

import ast
import json
from typing import Any

from shim.engine.parsers.base import Calls, call_object
from shim.engine.types import Piece

_SEPARATORS = " \t\r\n;,"


class JsonCalls:
    def __init__(
        self,
        tools: list[dict[str, Any]] | None,
        *,
        start: str = "",
        reopen: str = "",
        end: str = "",
        tagless: bool = False,
        opens: str = "{",
        pythonic: bool = False,
    ) -> None:
        self.calls = Calls(tools)
        self.start = start if tools else ""
        self.reopen = reopen  # the start marker's tail that belongs to the JSON: the `[` of `functools[`
        self.end = end if tools else ""  # closes a call: dropped after one, markup where nothing parsed
        self.tagless = tagless and bool(tools)
        self.opens = opens  # what a tag-less call opens with (Ollama's `{` or `[` tag)
        self.pythonic = pythonic  # Llama's built-in tools: `<|python_tag|>brave_search.call(query="x")`
        self.buffer: str | None = None  # the call text not yet parsed; None outside a call
        self.raw = ""  # everything since the call opened, marker included: the content if nothing parses
        self.parsed = 0  # calls parsed since the call opened
        self.tagged = False  # the call opened with the start marker (not as a tag-less `{`)
        self.answered = False  # non-space content went out: a tag-less call can no longer start
        self.held = ""  # leading whitespace, held while a tag-less call may still start

    @property
    def markers(self) -> tuple[str, ...]:
        return tuple(m for m in (self.start, self.end) if m)

    @property
    def collecting(self) -> bool:
        return self.buffer is not None

    def marker(self, marker: str) -> list[Piece] | None:
        if not self.start or marker != self.start:
            return None
        self._open(marker, self.reopen)
        return []

    def content(self, text: str) -> list[Piece]:
        if self.tagless and not self.answered:
            body, self.held = self.held + text, ""
            if not body.strip():
                self.held = body
                return []
            value = body.lstrip()
            if value.startswith(self.opens):
                self._open("", "")
                self.raw = body[: len(body) - len(value)]  # the leading whitespace, if this is content after all
                return self.feed(value)
        if text.strip():
            self.answered = True
        return [Piece(content=text)] if text else []

    def feed(self, text: str, marker: bool = False) -> list[Piece]:
        assert self.buffer is not None
        self.raw += text
        self.buffer += self.reopen if marker and text == self.start else text
        out: list[Piece] = []
        while self.buffer is not None:
            rest = self._between(self.buffer)
            if not rest:
                break
            if rest[0] not in "{[":
                if self.parsed:  # prose after the calls: the block is over
                    self.buffer = None
                    out.append(Piece(content=rest))
                    self.answered = True
                elif not self.pythonic:
                    out += self._give_up()
                break
            end = _value_end(rest)
            if end < 0:
                break
            calls = self._calls(rest[:end])
            if calls is None:
                out += self._give_up()
                break
            out.append(self.calls.number(calls))
            self.parsed += len(calls)
            self.buffer = rest[end:]
        return out

    def flush(self) -> list[Piece]:
        held, self.held = self.held, ""
        if self.buffer is None:
            return [Piece(content=held)] if held else []
        rest = self._between(self.buffer).rstrip(_SEPARATORS)
        if not rest:
            self.buffer = None
            return []
        call = _pythonic(rest) if self.pythonic and not self.parsed else None
        if call is not None:
            self.buffer = None
            return [self.calls.number([call])]
        if self.parsed:
            self.buffer = None
            return [Piece(content=rest)]
        return self._give_up()

    def _between(self, text: str) -> str:
        """The text after separators and, once a call parsed, the end markers that close it."""
        while True:
            text = text.lstrip(_SEPARATORS)
            if not (self.parsed and self.end and text.startswith(self.end)):
                return text
            text = text[len(self.end) :]

    def _open(self, marker: str, reopen: str) -> None:
        self.buffer, self.raw, self.parsed, self.held = reopen, marker, 0, ""
        self.tagged = bool(marker)

    def _give_up(self) -> list[Piece]:
        """Not a call after all: what was held back goes out as the content it is."""
        raw = self.raw if not self.parsed else (self.buffer or "")
        self.buffer, self.answered = None, True
        return [Piece(content=raw)] if raw else []

    def _calls(self, text: str) -> list[tuple[str, dict[str, Any]]] | None:
        try:
            value = json.loads(text)
        except ValueError:
            return None
        calls = [call_object(v) for v in (value if isinstance(value, list) else [value])]
        if not calls or any(c is None for c in calls):
            return None
        found = [c for c in calls if c is not None]
        # Tag-less: only calls to the request's tools (an answer that happens to be JSON stays content).
        if not self.tagged and not all(self.calls.known(name) for name, _ in found):
            return None
        return found


def _value_end(text: str) -> int:
    """Where the JSON object or array at the start of `text` closes (the index after it); -1 if it has not yet."""
    depth = 0
    in_string = escaped = False
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
    return -1


def _pythonic(text: str) -> tuple[str, dict[str, Any]] | None:
    """`name.call(key=value, ...)` (Llama 3.1's built-in tools) or `name(key=value)`, literal values only."""
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError:
        return None
    if not isinstance(node, ast.Call) or node.args:
        return None
    func = node.func
    if isinstance(func, ast.Attribute) and func.attr == "call" and isinstance(func.value, ast.Name):
        name = func.value.id
    elif isinstance(func, ast.Name):
        name = func.id
    else:
        return None
    arguments: dict[str, Any] = {}
    for keyword in node.keywords:
        if keyword.arg is None:
            return None
        try:
            arguments[keyword.arg] = ast.literal_eval(keyword.value)
        except (ValueError, TypeError, SyntaxError, RecursionError):
            return None
    return name, arguments
