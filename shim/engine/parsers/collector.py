"""Tool calls between a start and an end marker, parsed with a family's parse function: mlx-lm's own tool
parser for the families it knows (`TokenizerWrapper.tool_parser`, `tool_call_start`, `tool_call_end`, from
`mlx_lm/tool_parsers/`), or one of ours (`shim/engine/parsers/`).

Between the markers the model writes a call, not prose: that text is held back from `content` and parsed
when the end marker arrives (or, for families without an end marker such as Mistral's `[TOOL_CALLS]`, when
generation ends), so raw call markup never leaks into a streamed answer. The markers are found in text
(`markers.MarkerScanner`), so they may span several tokens. A call that does not parse is passed on as
content, as Ollama does, rather than dropped. Whitespace between calls (Qwen writes a newline after each) and
after the last is dropped as Ollama's tool parser drops it: an answer of calls alone has no content.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shim.engine.parsers.base import Calls, call_object
from shim.engine.types import Piece

ParseFunction = Callable[[str, Any], Any]  # mlx-lm's shape: (text, tools) -> a call dict or a list of them


class ToolCallCollector:
    def __init__(self, parser: ParseFunction | None, start: str, end: str, tools: list[dict[str, Any]] | None) -> None:
        usable = bool(tools) and parser is not None and bool(start)
        self.start = start if usable else ""
        self.end = end if usable else ""
        self.parser = parser
        self.calls = Calls(tools)
        self.buffer: list[str] | None = None
        self.between: str | None = None  # whitespace since the last call closed; None: no call, or text since

    @classmethod
    def from_tokenizer(cls, tokenizer: Any, tools: list[dict[str, Any]] | None) -> ToolCallCollector:
        """mlx-lm's parser for the tokenizer's family (none: calls are never parsed)."""
        return cls(
            getattr(tokenizer, "tool_parser", None),
            getattr(tokenizer, "tool_call_start", None) or "",
            getattr(tokenizer, "tool_call_end", None) or "",
            tools,
        )

    @property
    def markers(self) -> tuple[str, ...]:
        return tuple(m for m in (self.start, self.end) if m)

    @property
    def collecting(self) -> bool:
        return self.buffer is not None

    def marker(self, marker: str) -> list[Piece] | None:
        """A start marker opens a call; anything else is not ours (None)."""
        if self.start and marker == self.start:
            self.buffer, self.between = [], None
            return []
        return None

    def feed(self, text: str, marker: bool = False) -> list[Piece]:
        """While collecting: keep text (other markers included) until the end marker, then parse."""
        assert self.buffer is not None
        if marker and self.end and text == self.end:
            return self._close(complete=True)
        self.buffer.append(text)
        return []

    def content(self, text: str) -> list[Piece]:
        if self.between is not None:
            if not text.strip():
                self.between += text
                return []
            text, self.between = self.between + text, None
        return [Piece(content=text)] if text else []

    def flush(self) -> list[Piece]:
        """The end of generation: only a family without an end marker has a complete call here."""
        self.between = None
        return self._close(complete=not self.end)

    def _close(self, complete: bool) -> list[Piece]:
        if self.buffer is None:
            return []
        text, self.buffer = "".join(self.buffer), None
        calls = self._parse(text) if complete else None
        if calls is None:
            end = self.end if complete else ""
            return [Piece(content=f"{self.start}{text}{end}")]
        self.between = ""
        return [self.calls.number(calls)]

    def _parse(self, text: str) -> list[tuple[str, dict[str, Any]]] | None:
        """Every call with a string name and object arguments (a JSON string is decoded), else None."""
        if self.parser is None:
            return None
        try:
            parsed = self.parser(text, self.calls.tools)
        except Exception:  # any parser failure means: not a call we can hand to a client
            return None
        calls = [call_object(c) for c in (parsed if isinstance(parsed, list) else [parsed])]
        if not calls or any(c is None for c in calls):
            return None
        return [c for c in calls if c is not None]
