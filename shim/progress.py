"""How the `ollama` CLI shows things: human sizes and times, tables, and pull/create progress.

Progress follows `ollama pull`: every status line and every per-digest bar keeps its own line; on a
terminal the whole block is redrawn in place (at most 10 times a second), elsewhere each status is printed
once and each bar once, when it completes or when the stream ends.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO


def human_bytes(n: int) -> str:
    """Ollama's format.HumanBytes (decimal units)."""
    for unit, scale in (("TB", 1000**4), ("GB", 1000**3), ("MB", 1000**2), ("KB", 1000)):
        if n >= scale:
            value = n / scale
            if value >= 10 or value == math.trunc(value):
                return f"{int(value)} {unit}"
            return f"{value:.1f} {unit}"
    return f"{n} B"


def human_duration(seconds: float) -> str:
    """Ollama's format.humanDuration."""
    if seconds < 1:
        return "Less than a second"
    if int(seconds) == 1:
        return "1 second"
    if seconds < 60:
        return f"{int(seconds)} seconds"
    minutes = int(seconds // 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(seconds / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"


def human_time(timestamp: str, zero: str = "Never", now: datetime | None = None) -> str:
    """Ollama's format.HumanTime for an RFC 3339 timestamp from the API ("2 hours ago", "4 minutes from now")."""
    when = parse_time(timestamp)
    if when is None or when.year <= 1:
        return zero
    delta = ((now or datetime.now(UTC)) - when).total_seconds()
    if delta / 3600 / 24 / 365 < -20:
        return "Forever"
    if delta < 0:
        return human_duration(-delta) + " from now"
    return human_duration(delta) + " ago"


def parse_time(text: str) -> datetime | None:
    """Go's RFC 3339 with up to 9 fractional digits (Python reads at most 6)."""
    head, dot, rest = text.partition(".")
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[: min(digits, 6)]}{rest[digits:]}"
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def table(rows: list[list[str]], padding: str = "    ") -> str:
    """tablewriter with no borders and no whitespace, as the ollama CLI configures it: each column as wide as
    its widest cell, every cell followed by the padding."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))] if rows else []
    return "".join("".join(cell.ljust(w) + padding for cell, w in zip(row, widths, strict=True)) + "\n" for row in rows)


@dataclass
class _Bar:
    message: str
    total: int
    completed: int = 0
    started: float = field(default_factory=time.monotonic)
    initial: int = 0
    stopped: float | None = None

    def set(self, completed: int) -> None:
        self.completed = min(completed, self.total) if self.total else completed
        if self.total and self.completed >= self.total and self.stopped is None:
            self.stopped = time.monotonic()

    @property
    def done(self) -> bool:
        return self.stopped is not None

    def render(self, width: int) -> str:
        """progress.Bar.String(): message, percent, the bar, sizes, rate and time left."""
        percent = 100 * self.completed / self.total if self.total else 0.0
        pre = f"{self.message} {percent:3.0f}%"
        if self.stopped is None:
            current, total = human_bytes(self.completed), human_bytes(self.total)
            suffix = " " * (6 - len(current)) + current + "/" + total + " " * (6 - len(total))
        else:
            total = human_bytes(self.total)
            suffix = " " * (6 - len(total)) + total + " " * 7
        elapsed = time.monotonic() - self.started
        rate = (self.completed - self.initial) / elapsed if elapsed > 0 else 0.0
        if self.stopped is None and rate > 0:
            shown = human_bytes(int(rate))
            left = _short_duration((self.total - self.completed) / rate)
            suffix += "  " + " " * (6 - len(shown)) + shown + "/s" + "  " + " " * (6 - len(left)) + left
        else:
            suffix += " " * 18
        room = max(width - len(pre) - len(suffix) - 5, 0)
        filled = int(room * percent / 100)
        bar = f" ▕{'█' * filled}{' ' * (room - filled)}▏ " if room else " "
        return f"{pre}{bar}{suffix}".rstrip()


def _short_duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60}s"
    return f"{seconds}s"


class Progress:
    """Renders Ollama's progress stream (`{"status"}` lines and `{"status","digest","total","completed"}`)."""

    def __init__(self, out: TextIO, tty: bool | None = None) -> None:
        self.out = out
        self.tty = out.isatty() if tty is None else tty
        self.items: list[str | _Bar] = []
        self.bars: dict[str, _Bar] = {}
        self.status = ""
        self.drawn_lines = 0
        self.last_draw = 0.0

    def pull_event(self, event: dict[str, Any]) -> None:
        """One line of /api/pull as `ollama pull` shows it: a bar per digest named by its first 12 hex
        characters; the first 0-byte report of a layer is skipped, as ollama does."""
        digest = event.get("digest") or ""
        if digest:
            completed = int(event.get("completed") or 0)
            if completed == 0 and digest not in self.bars:
                return
            name = digest.removeprefix("sha256:").strip()[:12] if digest.startswith("sha256:") else digest
            self.bar(digest, f"pulling {name}:", int(event.get("total") or 0), completed)
        elif event.get("total") and event.get("status"):  # progress without a digest (a whole-model transfer)
            self.bar(event["status"], event["status"], int(event["total"]), int(event.get("completed") or 0))
        elif event.get("status") and event["status"] != self.status:
            self.line(event["status"])

    def line(self, status: str) -> None:
        self.status = status
        self.items.append(status)
        if not self.tty:
            self.out.write(status + "\n")
            self.out.flush()
        self._draw()

    def bar(self, key: str, message: str, total: int, completed: int) -> None:
        bar = self.bars.get(key)
        if bar is None:
            bar = self.bars[key] = _Bar(message, total, initial=completed)
            self.items.append(bar)
        was_done = bar.done
        bar.total = total or bar.total
        bar.set(completed)
        if not self.tty and bar.done and not was_done:
            self.out.write(bar.render(80) + "\n")
            self.out.flush()
        self._draw(force=bar.done and not was_done)

    def close(self) -> None:
        if self.tty:
            self._draw(force=True)
            return
        for bar in self.bars.values():  # bars that never completed still get their last state
            if not bar.done:
                self.out.write(bar.render(80) + "\n")
        self.out.flush()

    def _draw(self, force: bool = False) -> None:
        if not self.tty:
            return
        now = time.monotonic()
        if not force and now - self.last_draw < 0.1 and self.items and isinstance(self.items[-1], _Bar):
            return
        self.last_draw = now
        width = shutil.get_terminal_size((80, 24)).columns
        up = f"\x1b[{self.drawn_lines}A" if self.drawn_lines else ""
        lines = [item if isinstance(item, str) else item.render(width) for item in self.items]
        self.out.write(up + "\r" + "".join(f"\x1b[K{line}\n" for line in lines))
        self.out.flush()
        self.drawn_lines = len(lines)
