"""What every family's output format shares: the interface the output router drives, and the reading of
one call object (`{"name": ..., "arguments"|"parameters": ...}`) into a ToolCall.

A format sees the generated text as the router cuts it (`shim/engine/output.py`): its markers, found in
the text by `markers.MarkerScanner` wherever tokens split them; the answer text outside calls (after the
thinking split and stop strings); and, while it collects a call, the raw text of the call. It answers with
Pieces. The output side never raises on what a model writes: markup that does not parse is content.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from shim.engine.types import Piece, ToolCall


class CallFormat(Protocol):
    """One family's tool-call (and, for harmony, channel) markup in generated text."""

    @property
    def markers(self) -> tuple[str, ...]:
        """Strings the scanner cuts out of the text and hands to `marker` (or `feed` while collecting)."""
        ...

    @property
    def collecting(self) -> bool:
        """Inside a call: every segment goes to `feed` as written, past the stop strings and thinking."""
        ...

    def marker(self, marker: str) -> list[Piece] | None:
        """A marker outside a call; None: not this format's (a think marker, for the thinking split)."""
        ...

    def feed(self, text: str, marker: bool = False) -> list[Piece]:
        """While collecting: the call's text and markers, in order."""
        ...

    def content(self, text: str) -> list[Piece]:
        """Answer text outside calls (a tag-less format may start a call here)."""
        ...

    def flush(self) -> list[Piece]:
        """The end of generation: a call still open is parsed if it can be, else returned as content."""
        ...


class Calls:
    """Numbering of the calls one answer makes (Ollama's `index`, counted across the whole answer)."""

    def __init__(self, tools: list[dict[str, Any]] | None) -> None:
        self.tools = tools or []
        self.count = 0

    def number(self, calls: list[tuple[str, dict[str, Any]]]) -> Piece:
        out = []
        for name, arguments in calls:
            out.append(ToolCall(name, arguments, self.count))
            self.count += 1
        return Piece(tool_calls=out)  # unnamed: the service gives each call its id

    def known(self, name: str) -> bool:
        return any(_tool_name(tool) == name for tool in self.tools)


def call_object(value: Any) -> tuple[str, dict[str, Any]] | None:
    """A JSON call as the families write it: a string `name` and object `arguments` (Llama's `parameters`),
    arguments given as a JSON string decoded; None for anything else."""
    if not isinstance(value, dict) or not isinstance(value.get("name"), str) or not value["name"]:
        return None
    arguments = value.get("arguments", value.get("parameters", {}))
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            return None
    if arguments is None:
        arguments = {}
    return (value["name"], arguments) if isinstance(arguments, dict) else None


def _tool_name(tool: dict[str, Any]) -> str:
    function = tool.get("function", tool)
    return str(function.get("name", "")) if isinstance(function, dict) else ""


def tool_names(tools: list[dict[str, Any]] | None) -> list[str]:
    return [name for name in (_tool_name(t) for t in tools or []) if name]
