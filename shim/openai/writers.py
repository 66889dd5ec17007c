"""OpenAI's answers from the engine's events, as Ollama's openai ChatWriter and CompletionWriter write them:
the SSE writers for the one streaming loop (shim.streaming) and the whole answers for `stream: false`.

A load-only request (every message converted to nothing, or an empty prompt) is one final event like any
other here, so it comes out as Ollama's writer converts the handler's load answer: finish reason "load".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from shim.engine import Done, Piece, ToolCall
from shim.errors import ShimError
from shim.jsonbytes import go_json
from shim.openai.http import SSE, error_answer

ZERO_USAGE = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


@dataclass(frozen=True)
class Head:
    """What every object of one answer repeats."""

    id: str
    created: int
    model: str

    def obj(self, kind: str, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model,
                "system_fingerprint": "fp_ollama", "choices": choices, **extra}  # fmt: skip


def usage(done: Done) -> dict[str, int]:
    total = done.prompt_eval_count + done.eval_count
    return {"prompt_tokens": done.prompt_eval_count, "completion_tokens": done.eval_count, "total_tokens": total}


def finish_reason(done: Done, tool_calls: bool) -> str:
    return "tool_calls" if tool_calls and done.done_reason == "stop" else done.done_reason


def tool_calls(calls: list[ToolCall]) -> list[dict[str, Any]]:
    """OpenAI wants the arguments as a JSON string, where Ollama sends an object."""
    return [
        {"id": c.id, "index": c.index, "type": "function",
         "function": {"name": c.name, "arguments": go_json(c.arguments).decode()}}
        for c in calls
    ]  # fmt: skip


def _logprobs(piece: Piece) -> dict[str, Any]:
    """A choice's `logprobs` (omitted when there are none): Ollama's own Logprob objects under `content`."""
    return {"logprobs": {"content": [lp.to_ollama() for lp in piece.logprobs]}} if piece.logprobs else {}


def _sse(objects: list[dict[str, Any]]) -> bytes:
    return b"".join(b"data: " + go_json(o) + b"\n\n" for o in objects)


def chat_completion(head: Head, piece: Piece, done: Done) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": piece.content}
    if piece.thinking:
        message["reasoning"] = piece.thinking
    if piece.tool_calls:
        message["tool_calls"] = tool_calls(piece.tool_calls)
    reason = finish_reason(done, bool(piece.tool_calls))
    choice = {"index": 0, "message": message, "finish_reason": reason, **_logprobs(piece)}
    return head.obj("chat.completion", [choice], usage=usage(done))


def text_completion(head: Head, piece: Piece, done: Done) -> dict[str, Any]:
    choice = {"text": piece.content, "index": 0, "finish_reason": done.done_reason}
    return head.obj("text_completion", [choice], usage=usage(done))


class _SSEWriter:
    headers = SSE

    def error_frame(self, error: ShimError) -> bytes:
        """Ollama's writer reports any error in the stream as an api_error."""
        obj = {"error": {"message": error.message, "type": "api_error", "param": None, "code": None}}
        return b"data: " + go_json(obj) + b"\n\n"

    def error_response(self, error: ShimError) -> Response:
        return error_answer(error)


class ChatWriter(_SSEWriter):
    """chat.completion.chunk frames; a piece with reasoning and content becomes two, reasoning first."""

    def __init__(self, head: Head, include_usage: bool) -> None:
        self.head = head
        self.include_usage = include_usage
        self.saw_tools = False

    def frames(self, event: Piece | Done) -> bytes:
        if isinstance(event, Done):
            return _sse(self._final(event)) + b"data: [DONE]\n\n"
        self.saw_tools = self.saw_tools or bool(event.tool_calls)
        deltas = []
        if event.thinking:
            deltas.append({"role": "assistant", "content": "", "reasoning": event.thinking})
        if event.content or event.tool_calls or not event.thinking:
            delta: dict[str, Any] = {"role": "assistant", "content": event.content}
            if event.tool_calls:
                delta["tool_calls"] = tool_calls(event.tool_calls)
            deltas.append(delta)
        choices = [{"index": 0, "delta": d, "finish_reason": None} for d in deltas]
        choices[-1].update(_logprobs(event))
        return _sse([self.head.obj("chat.completion.chunk", [c]) for c in choices])

    def _final(self, done: Done) -> list[dict[str, Any]]:
        reason = finish_reason(done, self.saw_tools)
        choice = {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": reason}
        out = [self.head.obj("chat.completion.chunk", [choice])]
        if self.include_usage:
            out.append(self.head.obj("chat.completion.chunk", [], usage=usage(done)))
        return out


class CompletionWriter(_SSEWriter):
    """text_completion frames; pieces with no text write nothing; usage rides on every frame when asked."""

    def __init__(self, head: Head, include_usage: bool) -> None:
        self.head = head
        self.include_usage = include_usage

    def frames(self, event: Piece | Done) -> bytes:
        if isinstance(event, Done):
            out = [self._frame({"text": "", "index": 0, "finish_reason": event.done_reason})]
            out += [self._frame(None, usage(event))] if self.include_usage else []
            return _sse(out) + b"data: [DONE]\n\n"
        return _sse([self._frame({"text": event.content, "index": 0, "finish_reason": None})]) if event.content else b""

    def _frame(self, choice: dict[str, Any] | None, used: dict[str, int] | None = None) -> dict[str, Any]:
        head, choices = self.head, [choice] if choice else []
        out = {"id": head.id, "object": "text_completion", "created": head.created, "choices": choices,
               "model": head.model, "system_fingerprint": "fp_ollama"}  # fmt: skip
        if self.include_usage:
            out["usage"] = used or ZERO_USAGE
        return out
