"""How `mlx-shim run` draws a streamed answer, as `ollama run` does (cmd/cmd.go's chat and displayResponse):
thinking between `Thinking...` and `...done thinking.` (grey on a terminal), then the answer, its words
wrapped before the terminal's right edge when word wrap is on and the output is a terminal."""

from __future__ import annotations

import shutil
import unicodedata
from typing import Any, TextIO

GREY, BOLD, RESET = "\x1b[38;5;245m", "\x1b[1m", "\x1b[0m"  # ollama's readline colours


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


class Display:
    def __init__(self, out: TextIO, hide_thinking: bool, word_wrap: bool) -> None:
        self.out = out
        self.hide_thinking = hide_thinking
        self.color = out.isatty()
        # ollama wraps a pipe at 80 columns with cursor escapes; here only a terminal is wrapped.
        self.wrap_width = shutil.get_terminal_size().columns if word_wrap and self.color else 0
        self.thinking, self.opened = "", False
        self.content = ""
        self.line_length, self.word = 0, ""

    def show(self, message: dict[str, Any]) -> None:
        if message.get("thinking") and not self.hide_thinking:
            if not self.opened:
                self.out.write(f"{GREY}{BOLD}Thinking...\n{RESET}{GREY}" if self.color else "Thinking...\n")
                self.opened = True
            self.thinking += message["thinking"]
            self._write(message["thinking"])
        content = message.get("content") or ""
        if self.opened and (content or message.get("tool_calls")):
            if not self.thinking.endswith("\n"):
                self.out.write("\n")
            self.out.write(f"{GREY}{BOLD}...done thinking.\n\n{RESET}" if self.color else "...done thinking.\n\n")
            self.opened = False
            self.line_length, self.word = 0, ""
        self.content += content
        self._write(content)
        self.out.flush()

    def close(self) -> None:
        if self.opened and self.color:
            self.out.write(RESET)

    def _write(self, text: str) -> None:
        """displayResponse: at the edge, the word under way moves to the next line."""
        width = self.wrap_width
        if width < 10:
            self.out.write(text)
            return
        for c in text:
            if self.line_length + 1 > width - 5:
                if _width(self.word) > width - 10:  # a word longer than a line is left to the terminal
                    self.out.write(c)
                    self.word, self.line_length = "", 0
                    continue
                if self.word:
                    self.out.write(f"\x1b[{_width(self.word)}D")
                self.out.write(f"\x1b[K\n{self.word}{c}")
                self.line_length = _width(self.word) + _width(c)
                continue
            self.out.write(c)
            self.line_length += _width(c)
            if _width(c) >= 2 or c in " \t":
                self.word = ""
            elif c in "\r\n":
                self.line_length, self.word = 0, ""
            else:
                self.word += c
