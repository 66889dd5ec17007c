"""gpt-oss's harmony format, read as Ollama's `harmony/harmonyparser.go` reads it.

The answer is a run of messages, `<|start|>{header}<|message|>{body}<|end|>`; the prompt ends with
`<|start|>assistant`, so the first header starts implicitly. A header names the channel (`<|channel|>NAME`)
and, for a tool call, a recipient (`to=functions.NAME`, before or after the channel). As in Ollama:
channel `analysis` is thinking; `analysis` or `commentary` with a recipient is a tool call whose body is
the JSON arguments; `commentary` without one, `final` (and any other channel) are content. `<|call|>` and
`<|return|>` end generation (they are end tokens: `parsers.END_TOKENS`); either, or `<|end|>`, ends the
message. Tool names are mapped back from the identifiers harmony prompts use (`get-weather` is rendered
`get_weather`), as Ollama's FunctionNameMap does.

Where Ollama drops text (outside any message, or a message cut off before its `<|message|>`), it goes out
as content here, and a call whose arguments are not a JSON object is its arguments' text as content.
"""

from __future__ import annotations

import json
import re
from typing import Any

from shim.engine.parsers.base import Calls, tool_names
from shim.engine.types import Piece

START, CHANNEL, MESSAGE, END = "<|start|>", "<|channel|>", "<|message|>", "<|end|>"
CONSTRAIN, CALL, RETURN = "<|constrain|>", "<|call|>", "<|return|>"
IMPLICIT_HEADER = "assistant"  # the prompt ends with `<|start|>assistant`


class Harmony:
    markers = (START, CHANNEL, MESSAGE, END, CONSTRAIN, CALL, RETURN)
    collecting = False  # header, thinking and arguments all arrive as answer text (so stop strings see them)

    def __init__(self, tools: list[dict[str, Any]] | None) -> None:
        self.calls = Calls(tools)
        self.names = {harmony_name(name): name for name in tool_names(tools)}
        self.state = "header"  # header | body | between (after a message's end, before the next start)
        self.header = IMPLICIT_HEADER
        self.mode = "content"  # what the body is: content | thinking | tool
        self.recipient = ""
        self.arguments = ""

    def marker(self, marker: str) -> list[Piece] | None:
        if marker == START:
            out = self._end_message()
            self.state, self.header = "header", ""
            return out
        if self.state == "header":
            if marker == MESSAGE:
                self._open_body()
            else:
                self.header += marker
            return []
        if marker in (END, CALL, RETURN):
            out = self._end_message()
            self.state = "between"
            return out
        return self.content(marker)  # a stray tag inside a body is the body's text

    def feed(self, text: str, marker: bool = False) -> list[Piece]:
        return []  # never collecting

    def content(self, text: str) -> list[Piece]:
        if self.state == "header":
            self.header += text
            return []
        if self.state == "between":
            return [Piece(content=text)] if text.strip() else []
        if self.mode == "tool":
            self.arguments += text
            return []
        return [Piece(thinking=text)] if self.mode == "thinking" else [Piece(content=text)]

    def flush(self) -> list[Piece]:
        if self.state == "header":  # cut off before `<|message|>`: the header text was all there is
            text = self.header.removeprefix(IMPLICIT_HEADER) if self.header != IMPLICIT_HEADER else ""
            self.header = ""
            return [Piece(content=text)] if text.strip() else []
        return self._end_message()

    def _open_body(self) -> None:
        channel, recipient = parse_header(self.header)
        self.state, self.header, self.recipient, self.arguments = "body", "", recipient, ""
        if channel in ("analysis", "commentary") and recipient:
            self.mode = "tool"
        elif channel == "analysis":
            self.mode = "thinking"
        else:
            self.mode = "content"

    def _end_message(self) -> list[Piece]:
        mode, self.mode = self.mode, "content"
        if mode != "tool":
            return []
        raw, self.arguments = self.arguments, ""
        try:
            arguments = json.loads(raw) if raw.strip() else {}
        except ValueError:
            arguments = None
        if not isinstance(arguments, dict):
            return [Piece(content=raw)] if raw else []
        name = self.recipient.removeprefix("functions.")
        return [self.calls.number([(self.names.get(name, name), arguments)])]


def parse_header(raw: str) -> tuple[str, str]:
    """Ollama's parseHeader: the channel (`<|channel|>NAME`, up to whitespace) and the recipient (`to=X` as
    the first word, taking the role's place, or as the word after the role)."""
    if CONSTRAIN in raw:
        raw = raw.replace(CONSTRAIN, " " + CONSTRAIN, 1).strip()
    channel = ""
    at = raw.find(CHANNEL)
    if at != -1:
        before, after = raw[:at], raw[at + len(CHANNEL) :]
        space = re.search(r"\s", after)
        cut = space.start() if space else len(after)
        channel = after[:cut]
        raw = (before + after[cut:]).strip()
    words = raw.split()
    if not words:
        return channel, ""
    if words[0].startswith("to="):
        return channel, words[0][3:]
    if len(words) > 1 and words[1].startswith("to="):
        return channel, words[1][3:]
    return channel, ""


def harmony_name(name: str) -> str:
    """Ollama's convertToValidChars: the identifier a tool's name becomes in a harmony prompt."""
    if name in ("browser.open", "browser.search", "browser.find", "python"):
        return name  # built-in tools keep their names
    out = "".join("_" if ch in " -." else ch for ch in name if ch in " -." or ch.isalnum() or ch in "_$")
    if not out:
        return "unnamed"
    return "_" + out if out[0].isdigit() else out
