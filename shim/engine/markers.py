"""Markers (`<think>`, `<tool_call>`, `[TOOL_CALLS]`, ...) cut out of streamed text, wherever tokens split them.

A marker is often one special token, but not always: Gemma's `<|channel>thought`, a `<tool_call>` that a
tokenizer spells as `<`, `tool`, `_call`, `>`. So markers are found in the decoded text, and text that may
be the start of a marker is held back until the next piece decides, as stop strings are (`stops.py`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from shim.engine.stops import overlap


class Segment(NamedTuple):
    text: str
    marker: bool = False  # True: `text` is exactly one of the scanner's markers


class MarkerScanner:
    def __init__(self, markers: Iterable[str]) -> None:
        # Longest first, so a marker that starts another (`<tool_call>` / `<tool_call_x>`) loses a tie.
        self.markers = tuple(sorted({m for m in markers if m}, key=len, reverse=True))
        self.pending = ""

    def feed(self, text: str) -> list[Segment]:
        """Add decoded text; return the text and markers now certain, in order."""
        if not self.markers:
            return [Segment(text)] if text else []
        self.pending += text
        out: list[Segment] = []
        while True:
            found = [(i, m) for m in self.markers if (i := self.pending.find(m)) != -1]
            if not found:
                break
            start, marker = min(found, key=lambda f: f[0])  # min keeps the first (longest) on a tie
            if start:
                out.append(Segment(self.pending[:start]))
            out.append(Segment(marker, marker=True))
            self.pending = self.pending[start + len(marker) :]
        hold = max(overlap(self.pending, m) for m in self.markers)
        cut = len(self.pending) - hold
        if cut:
            out.append(Segment(self.pending[:cut]))
            self.pending = self.pending[cut:]
        return out

    def flush(self) -> str:
        """At the end of generation, held-back text was not a marker after all."""
        out, self.pending = self.pending, ""
        return out
