"""Gemma 4's answers: thinking in a channel, calls in mlx-lm's Gemma 4 markup, read as Ollama's
`model/parsers/gemma4.go` reads them.

    <|channel>thought
    The user wants the weather.<channel|><|tool_call>call:get_weather{city:<|"|>Paris<|"|>}<tool_call|>

The channel opens with its name (`thought` and a newline, dropped) and holds the thinking: `thinking` when
the request thinks; when it does not (the template then ends the prompt with an empty channel, and a model
that writes one anyway is not asked for it) the channel is dropped, as Ollama drops it, never `content`.
Whitespace around the thinking and after the channel is trimmed. Calls are mlx-lm's parser between
`<|tool_call>` and `<tool_call|>` (`collector.ToolCallCollector`); a stray `<tool_call|>` right after a call
is dropped, as Ollama drops that noise. `<|tool_response>` (the model handing over to the tool) and
`<turn|>` end generation: they are the family's end tokens (Gemma 4's generation_config lists both).
"""

from __future__ import annotations

from typing import Any

from mlx_lm.tool_parsers import gemma4

from shim.engine.parsers.collector import ToolCallCollector
from shim.engine.types import Piece

CHANNEL, CHANNEL_END = "<|channel>", "<channel|>"
TURN_END, TOOL_RESPONSE = "<turn|>", "<|tool_response>"
_NAME = "thought\n"  # the thinking channel's name, as the template writes it


class Gemma4:
    def __init__(self, tools: list[dict[str, Any]] | None, think: bool) -> None:
        self.calls = ToolCallCollector(gemma4.parse_tool_call, gemma4.tool_call_start, gemma4.tool_call_end, tools)
        self.think = think
        self.channel = False  # inside a channel
        self.name: str | None = None  # the channel's text while it may still be its name; None past it
        self.held = ""  # thinking's trailing whitespace, held until more thinking follows
        self.trim = False  # just after a channel: the answer's leading whitespace goes
        self.after_call = False  # just after a call: a stray `<tool_call|>` is noise

    @property
    def markers(self) -> tuple[str, ...]:
        return (CHANNEL, CHANNEL_END, *self.calls.markers)

    @property
    def collecting(self) -> bool:
        return self.calls.collecting

    def marker(self, marker: str) -> list[Piece] | None:
        if self.channel:  # in the channel only its end counts; other markup is thinking
            if marker != CHANNEL_END:
                return self._channel(marker)
            out = self._unnamed()
            self.channel, self.held, self.trim = False, "", True
            return out
        if marker == CHANNEL:
            self.channel, self.name, self.held = True, "", ""
            return []
        if marker == self.calls.end and self.after_call:
            return []
        pieces = self.calls.marker(marker)
        return self.content(marker) if pieces is None else pieces  # a stray end marker is text

    def feed(self, text: str, marker: bool = False) -> list[Piece]:
        return self._calls(self.calls.feed(text, marker))

    def content(self, text: str) -> list[Piece]:
        if self.channel:
            return self._channel(text)
        if self.trim:
            text = text.lstrip()
            if not text:
                return []
            self.trim = False
        if text.strip():
            self.after_call = False
        return self.calls.content(text)

    def flush(self) -> list[Piece]:
        """The end of generation: held thinking whitespace goes, an open call is settled."""
        out = self._unnamed() if self.channel else []
        self.channel, self.held = False, ""
        return out + self._calls(self.calls.flush())

    def _channel(self, text: str) -> list[Piece]:
        """Channel text: its name is dropped once it is certain, the rest is thinking."""
        if self.name is not None:
            name = self.name + text
            if len(name) < len(_NAME) and _NAME.startswith(name):  # the name may still be arriving
                self.name = name
                return []
            self.name = None
            text = name.removeprefix(_NAME)
        return self._thinking(text)

    def _unnamed(self) -> list[Piece]:
        """The channel ends before its name did: what there was of it is thinking, as in Ollama."""
        name, self.name = self.name, None
        return self._thinking(name) if name else []

    def _thinking(self, text: str) -> list[Piece]:
        body = self.held + text
        kept = body.rstrip()
        self.held = body[len(kept) :]
        return [Piece(thinking=kept)] if kept and self.think else []

    def _calls(self, pieces: list[Piece]) -> list[Piece]:
        if any(p.tool_calls for p in pieces):
            self.after_call = True
        return pieces
