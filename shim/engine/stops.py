"""Stop strings matched across token boundaries, as Ollama does: the stop text itself is never emitted,
and text that might be the start of a stop string is held back until the next token decides."""

from __future__ import annotations


class StopMatcher:
    def __init__(self, stops: tuple[str, ...]) -> None:
        self.stops = tuple(s for s in stops if s)
        self.pending = ""
        self.cut = 0  # after a hit: how many characters of what it was fed were the stop string and beyond

    def feed(self, text: str) -> tuple[str, bool]:
        """Add decoded text; return (text safe to emit now, whether a stop string was hit)."""
        if not self.stops:
            return text, False
        self.pending += text
        hits = [i for i in (self.pending.find(s) for s in self.stops) if i != -1]
        if hits:
            out = self.pending[: min(hits)]
            self.cut = len(self.pending) - len(out)
            self.pending = ""
            return out, True
        hold = max((overlap(self.pending, s) for s in self.stops), default=0)
        cut = len(self.pending) - hold
        out, self.pending = self.pending[:cut], self.pending[cut:]
        return out, False

    def flush(self) -> str:
        """At the end of generation, held-back text was not a stop after all."""
        out, self.pending = self.pending, ""
        return out


def overlap(text: str, stop: str) -> int:
    """Length of the longest suffix of text that is a proper prefix of stop."""
    for n in range(min(len(text), len(stop) - 1), 0, -1):
        if text.endswith(stop[:n]):
            return n
    return 0
