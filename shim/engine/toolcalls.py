"""Tool calls cut out of the token stream and parsed with the model's own mlx-lm tool parser.

Between the template's call markers the model writes a call, not prose: those tokens are held back from
`content` and parsed when the end marker arrives, so raw `<tool_call>` text never leaks into a streamed
answer. Markers that are single special tokens (the Qwen and Hermes families) are handled here; a call
that does not parse is passed on as content, as Ollama does, rather than dropped.
"""

from __future__ import annotations

import secrets
import string
from typing import Any

from shim.engine.types import Piece

_ID_ALPHABET = string.ascii_lowercase + string.digits


def tool_call_id() -> str:
    """Ollama's format: `call_` and 8 characters of [a-z0-9]."""
    return "call_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))


class ToolCallCollector:
    def __init__(self, tokenizer: Any, tools: list[dict[str, Any]] | None) -> None:
        start = getattr(tokenizer, "tool_call_start_tokens", None) or ()
        end = getattr(tokenizer, "tool_call_end_tokens", None) or ()
        usable = bool(tools) and len(start) == 1 and len(end) == 1
        self.start_id: int | None = start[0] if usable else None
        self.end_id: int | None = end[0] if usable else None
        self.tokenizer = tokenizer
        self.tools = tools
        self.buffer: list[int] | None = None
        self.count = 0

    @property
    def collecting(self) -> bool:
        return self.buffer is not None

    def begins(self, token: int) -> bool:
        if self.start_id is not None and token == self.start_id and self.buffer is None:
            self.buffer = []
            return True
        return False

    def feed(self, token: int) -> Piece | None:
        """While collecting: keep tokens until the end marker, then return the parsed call(s)."""
        assert self.buffer is not None
        if token != self.end_id:
            self.buffer.append(token)
            return None
        return self.flush(complete=True)

    def flush(self, complete: bool = False) -> Piece | None:
        if self.buffer is None:
            return None
        text = self.tokenizer.decode(self.buffer)
        self.buffer = None
        try:
            parsed = self.tokenizer.tool_parser(text, self.tools) if complete else None
        except Exception:  # any parser failure means: not a call we can hand to a client
            parsed = None
        calls = parsed if isinstance(parsed, list) else [parsed] if isinstance(parsed, dict) else []
        valid = [c for c in calls if isinstance(c.get("name"), str) and isinstance(c.get("arguments", {}), dict)]
        if not valid or len(valid) != len(calls):
            start = self.tokenizer.tool_call_start
            end = self.tokenizer.tool_call_end if complete else ""
            return Piece(content=f"{start}{text}{end}")
        out = []
        for call in valid:
            out.append({"id": tool_call_id(), "function": {"index": self.count, "name": call["name"],
                                                            "arguments": call.get("arguments", {})}})  # fmt: skip
            self.count += 1
        return Piece(tool_calls=out)
