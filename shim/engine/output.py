"""The decoded text of one completion turned into Pieces: stop strings, the thinking split, tool calls.

One object per request, fed text as tokens decode, so whichever loop drives generation (one request or a
batch) hands each request's text here and gets `content`, `thinking` and `tool_calls` back. Think and
tool-call markers are found in the text (`markers.MarkerScanner`), so they may span several tokens. The
family's call format (`shim/engine/parsers/`) gets its markers, the raw text of a call it collects, and
the answer text once stop strings and the thinking split have had it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shim.engine.markers import MarkerScanner, Segment
from shim.engine.parsers import call_format, tokenizer_family
from shim.engine.stops import StopMatcher
from shim.engine.thinking import ThinkingSplitter
from shim.engine.types import Piece


class OutputRouter:
    def __init__(
        self,
        tokenizer: Any,
        prompt: list[int],
        *,
        think: bool,
        tools: list[dict[str, Any]] | None,
        template: str = "",
        stops: tuple[str, ...],
        emit: Callable[[Piece], None],
        on_stop: Callable[[int], None] | None = None,
    ) -> None:
        family = tokenizer_family(tokenizer)
        tags = think and not (family is not None and family.thinking)  # a channel family splits its own
        self.think_start = (getattr(tokenizer, "think_start", None) or "") if tags else ""
        think_end = (getattr(tokenizer, "think_end", None) or "") if tags else ""
        thinking = bool(self.think_start and think_end)
        self.splitter = ThinkingSplitter(
            enabled=thinking,
            open_tag=self.think_start or "<think>",
            close_tag=think_end or "</think>",
            starts_open=thinking and _ends_with(tokenizer, prompt, self.think_start),
        )
        self.think_end = think_end if thinking else ""
        self.calls = call_format(tokenizer, family, tools, think, template)
        self.scanner = MarkerScanner(((self.think_start, think_end) if thinking else ()) + self.calls.markers)
        self.stops = StopMatcher(stops)
        self.emit = emit
        self.on_stop = on_stop  # told, before the text ahead of a stop string goes out, how much text it cut

    def feed(self, text: str) -> bool:
        """Decoded text of the next token(s); True when a stop string hit (generation must end)."""
        return self._route(self.scanner.feed(text))

    def finish(self, tail: str = "") -> bool:
        """The end of generation, with the detokenizer's last text; True when a stop string hit in it.
        Whatever was held back (a possible marker or stop string, an unfinished call) is settled."""
        hit = self._route([*self.scanner.feed(tail), Segment(self.scanner.flush())])
        if not hit:
            self._answer(self.splitter.text(self.stops.flush()))
        self.stopped()
        return hit

    def stopped(self) -> None:
        """Generation ended (on a stop string, or `finish`): held thinking and an open call are settled."""
        self._answer(self.splitter.flush())
        self._out(self.calls.flush())

    def _out(self, pieces: list[Piece]) -> None:
        for piece in pieces:
            self.emit(piece)

    def _answer(self, piece: Piece | None) -> None:
        """What the thinking split lets through: thinking goes out, content to the call format."""
        if piece is not None:
            self._out(self.calls.content(piece.content) if piece.content else [piece])

    def _route(self, segments: list[Segment]) -> bool:
        """Text to the stop matcher and splitter, markers to the splitter or the tool-call collector."""
        for i, seg in enumerate(segments):
            if self.calls.collecting:
                self._out(self.calls.feed(seg.text, seg.marker))
            elif seg.marker:
                # A marker ends whatever text was pending: it cannot be part of a stop string.
                self._answer(self.splitter.text(self.stops.flush()))
                pieces = self.calls.marker(seg.text)
                if pieces is not None:
                    self._out(pieces)
                elif seg.text == self.think_start:
                    self._answer(self.splitter.open())
                elif seg.text == self.think_end:
                    self._answer(self.splitter.close())
                else:  # another marker of the format where it means nothing (a call's end outside a call)
                    self._answer(self.splitter.text(seg.text))
            else:
                safe, hit = self.stops.feed(seg.text)
                if hit and self.on_stop is not None:
                    after = sum(len(s.text) for s in segments[i + 1 :]) + len(self.scanner.pending)
                    self.on_stop(self.stops.cut + after)
                self._answer(self.splitter.text(safe))
                if hit:
                    return True
        return False


def _ends_with(tokenizer: Any, prompt: list[int], marker: str) -> bool:
    """Whether the prompt ends in `marker` (and whitespace): the template opened the think block itself."""
    return bool(prompt) and str(tokenizer.decode(prompt[-16:])).rstrip().endswith(marker)
