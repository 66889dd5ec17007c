"""Splitting a thinking model's output into `thinking` and `content`.

The runner finds the think markers in the decoded text (`markers.MarkerScanner`, so a marker may span
several tokens) and calls `open`/`close`; text in between goes to `text`. As in Ollama's thinking.Parser,
only a think block at the very start (after whitespace) counts, whitespace around the thinking is trimmed, and
whitespace after `</think>` is dropped. Trailing whitespace is held back until we know whether the block
ends there, so streamed and collected thinking are the same text.
"""

from __future__ import annotations

from shim.engine.types import Piece


class ThinkingSplitter:
    def __init__(
        self, enabled: bool, open_tag: str = "<think>", close_tag: str = "</think>", starts_open: bool = False
    ) -> None:
        self.open_tag = open_tag
        self.close_tag = close_tag
        self.state = "opened" if starts_open else ("start" if enabled else "content")
        self.held = ""

    def open(self) -> Piece | None:
        """The think-start marker: opens the block only before any content, else it is content."""
        if self.state == "start":
            self.state, self.held = "opened", ""
            return None
        return self.text(self.open_tag) if self.state == "content" else None

    def close(self) -> Piece | None:
        """The think-end marker: ends the block; in the answer it is just text."""
        if self.state in ("opened", "thinking"):
            self.state, self.held = "after", ""
            return None
        return self.text(self.close_tag) if self.state == "content" else None

    def text(self, text: str) -> Piece | None:
        if not text:
            return None
        if self.state in ("opened", "thinking"):
            if self.state == "opened":
                text = text.lstrip()
                if not text:
                    return None
                self.state = "thinking"
            body = self.held + text
            kept = body.rstrip()
            self.held = body[len(kept) :]
            return Piece(thinking=kept) if kept else None
        if self.state in ("start", "after"):
            if not text.strip():
                self.held += text if self.state == "start" else ""
                return None
            text = (self.held + text) if self.state == "start" else text.lstrip()
            self.state, self.held = "content", ""
        return Piece(content=text)

    def flush(self) -> Piece | None:
        """At the end: whitespace held at the start was the whole answer; held thinking whitespace goes."""
        held, self.held = self.held, ""
        return Piece(content=held) if held and self.state == "start" else None
