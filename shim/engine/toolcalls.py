"""Tool calls cut out of the generated text and parsed with the model family's own mlx-lm tool parser.

mlx-lm picks the parser and its markers per family (`TokenizerWrapper.tool_parser`, `tool_call_start`,
`tool_call_end`, from `mlx_lm/tool_parsers/`). Between the markers the model writes a call, not prose:
that text is held back from `content` and parsed when the end marker arrives (or, for families without an
end marker such as Mistral's `[TOOL_CALLS]`, when generation ends), so raw call markup never leaks into a
streamed answer. The markers are found in text (`markers.MarkerScanner`), so they may span several
tokens. A call that does not parse is passed on as content, as Ollama does, rather than dropped.
"""

from __future__ import annotations

import json
from typing import Any

from shim.engine.types import Piece, ToolCall


class ToolCallCollector:
    def __init__(self, tokenizer: Any, tools: list[dict[str, Any]] | None) -> None:
        parser = getattr(tokenizer, "tool_parser", None)
        start = getattr(tokenizer, "tool_call_start", None) or ""
        usable = bool(tools) and parser is not None and bool(start)
        self.start = start if usable else ""
        self.end = (getattr(tokenizer, "tool_call_end", None) or "") if usable else ""
        self.parser = parser
        self.tools = tools
        self.buffer: list[str] | None = None
        self.count = 0

    @property
    def markers(self) -> tuple[str, ...]:
        return tuple(m for m in (self.start, self.end) if m)

    @property
    def collecting(self) -> bool:
        return self.buffer is not None

    def begins(self, marker: str) -> bool:
        """A start marker outside a call opens one (True); anything else is not ours (False)."""
        if self.start and marker == self.start and self.buffer is None:
            self.buffer = []
            return True
        return False

    def feed(self, text: str, marker: bool = False) -> Piece | None:
        """While collecting: keep text (other markers included) until the end marker, then parse."""
        assert self.buffer is not None
        if marker and self.end and text == self.end:
            return self.flush(complete=True)
        self.buffer.append(text)
        return None

    def flush(self, complete: bool = False) -> Piece | None:
        """The end marker (complete) or the end of generation: complete only for families without an end."""
        if self.buffer is None:
            return None
        text, self.buffer = "".join(self.buffer), None
        complete = complete or not self.end
        calls = self._parse(text) if complete else None
        if calls is None:
            end = self.end if complete else ""
            return Piece(content=f"{self.start}{text}{end}")
        out = []
        for call in calls:
            out.append(ToolCall(call["name"], call["arguments"], self.count))
            self.count += 1
        return Piece(tool_calls=out)  # unnamed: the service gives each call its id

    def _parse(self, text: str) -> list[dict[str, Any]] | None:
        """Every call with a string name and object arguments (a JSON string is decoded), else None."""
        if self.parser is None:
            return None
        try:
            parsed = self.parser(text, self.tools)
        except Exception:  # any parser failure means: not a call we can hand to a client
            return None
        calls = parsed if isinstance(parsed, list) else [parsed]
        out = []
        for call in calls:
            if not isinstance(call, dict) or not isinstance(call.get("name"), str):
                return None
            arguments = call.get("arguments", {})
            if isinstance(arguments, str):
                try:
                    arguments = json.loads(arguments) if arguments.strip() else {}
                except ValueError:
                    return None
            if not isinstance(arguments, dict):
                return None
            out.append({"name": call["name"], "arguments": arguments})
        return out or None
