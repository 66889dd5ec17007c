"""Chat results as Anthropic's answers, as Ollama's `anthropic` package writes them: the whole message, the
SSE writer (anthropic.StreamConverter's events) for the one streaming loop, and Anthropic's error objects.
"""

from __future__ import annotations

import secrets
from typing import Any

from starlette.responses import Response

from shim.engine import Done, Piece, ToolCall
from shim.errors import ShimError
from shim.jsonbytes import go_json

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}

SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "Connection": "keep-alive"}


def error_body(status: int, message: str) -> dict[str, Any]:
    """anthropic.NewError: the type follows the status; every error carries a fresh request id."""
    return {"type": "error", "error": error_object(status, message), "request_id": new_id("req")}


def error_object(status: int, message: str) -> dict[str, str]:
    return {"type": _ERROR_TYPES.get(status, "api_error"), "message": message}


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


# -- responses -----------------------------------------------------------------------------------------------


def stop_reason(done_reason: str, tool_calls: bool) -> str:
    """mapStopReason: Ollama says "stop" for a stop sequence too, so that is end_turn as well."""
    if tool_calls:
        return "tool_use"
    if done_reason == "stop":
        return "end_turn"
    if done_reason == "length":
        return "max_tokens"
    return "stop_sequence" if done_reason else ""


def _tool_use(call: ToolCall, arguments: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": call.id, "name": call.name, "input": arguments}


def message(message_id: str, model: str, piece: Piece, done: Done) -> dict[str, Any]:
    """ToMessagesResponse: thinking, text, then one tool_use block per call; no blocks is `null`, as Go."""
    content = []
    if piece.thinking:
        content.append({"type": "thinking", "thinking": piece.thinking})
    if piece.content:
        content.append({"type": "text", "text": piece.content})
    content += [_tool_use(c, c.arguments) for c in piece.tool_calls]
    out: dict[str, Any] = {"id": message_id, "type": "message", "role": "assistant", "model": model,
                           "content": content or None}  # fmt: skip
    reason = stop_reason(done.done_reason, bool(piece.tool_calls))
    if reason:
        out["stop_reason"] = reason
    out["usage"] = {"input_tokens": done.prompt_eval_count, "output_tokens": done.eval_count}
    return out


class StreamConverter:
    """anthropic.StreamConverter: chat chunks in, SSE events out, with its block bookkeeping."""

    def __init__(self, message_id: str, model: str, estimated_input_tokens: int) -> None:
        self.id = message_id
        self.model = model
        self.estimated = estimated_input_tokens
        self.first = True
        self.index = 0
        self.thinking_started = self.thinking_done = self.text_started = False
        self.sent: set[str] = set()

    def _stop(self) -> tuple[str, dict[str, Any]]:
        return "content_block_stop", {"type": "content_block_stop", "index": self.index}

    def _start(self, block: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return "content_block_start", {"type": "content_block_start", "index": self.index, "content_block": block}

    def _delta(self, delta: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return "content_block_delta", {"type": "content_block_delta", "index": self.index, "delta": delta}

    def process(self, piece: Piece | None, done: Done | None = None) -> list[tuple[str, dict[str, Any]]]:
        piece = piece or Piece()
        events: list[tuple[str, dict[str, Any]]] = []
        if self.first:
            self.first = False
            tokens = (done.prompt_eval_count if done else 0) or self.estimated
            head = {"id": self.id, "type": "message", "role": "assistant", "model": self.model, "content": [],
                    "usage": {"input_tokens": tokens, "output_tokens": 0}}  # fmt: skip
            events.append(("message_start", {"type": "message_start", "message": head}))
        if piece.thinking and not self.thinking_done:
            if not self.thinking_started:
                self.thinking_started = True
                events.append(self._start({"type": "thinking", "thinking": ""}))
            events.append(self._delta({"type": "thinking_delta", "thinking": piece.thinking}))
        if piece.content:
            if self.thinking_started and not self.thinking_done:
                self.thinking_done = True
                events.append(self._stop())
                self.index += 1
            if not self.text_started:
                self.text_started = True
                events.append(self._start({"type": "text", "text": ""}))
            events.append(self._delta({"type": "text_delta", "text": piece.content}))
        for call in piece.tool_calls:
            if call.id in self.sent:
                continue
            if self.thinking_started and not self.thinking_done:
                self.thinking_done = True
                events.append(self._stop())
                self.index += 1
            if self.text_started:
                events.append(self._stop())
                self.index += 1
                self.text_started = False
            events.append(self._start(_tool_use(call, {})))
            arguments = go_json(call.arguments).decode()
            events.append(self._delta({"type": "input_json_delta", "partial_json": arguments}))
            events.append(self._stop())
            self.sent.add(call.id)
            self.index += 1
        if done is not None:
            if self.text_started or (self.thinking_started and not self.thinking_done):
                events.append(self._stop())
            delta: dict[str, Any] = {}
            reason = stop_reason(done.done_reason, bool(self.sent))
            if reason:
                delta["stop_reason"] = reason
            usage = {"input_tokens": done.prompt_eval_count, "output_tokens": done.eval_count}
            events.append(("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}))
            events.append(("message_stop", {"type": "message_stop"}))
        return events


# -- token estimate (anthropic.EstimateInputTokens: the input size over four, for message_start) ---------


def estimate_tokens(req: dict[str, Any]) -> int:
    total = _count_any(req.get("system"))
    for m in req["messages"]:
        total += len(m["role"].encode()) + sum(_count_block(b) for b in m["content"])
    for tool in req.get("tools", []):
        schema = tool.get("input_schema")
        total += len(tool.get("name", "").encode()) + len(tool.get("description", "").encode())
        total += len(go_json(schema)) if schema is not None else 0
    tokens = total // 4
    return 1 if tokens == 0 and (req["messages"] or "system" in req) else tokens


def _count_any(content: Any) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return len(content.encode())
    if isinstance(content, list):
        return sum(_count_block(b) for b in content if isinstance(b, dict))
    return len(go_json(content))


def _count_block(block: dict[str, Any]) -> int:
    total = 0
    for key in ("text", "thinking"):
        if isinstance(block.get(key), str):
            total += len(block[key].encode())
    if block.get("type") in ("tool_use", "tool_result"):
        total += len(go_json(_go_block(block)))
    return total


def _go_block(block: dict[str, Any]) -> dict[str, Any]:
    """A request block as Go re-encodes its ContentBlock: fields in order, each kept as its tag says
    (strings and flags omitempty, pointers and `any` whenever set, `input` omitzero)."""
    kept = {}
    for key in ("type", "text", "citations", "source", "id", "name", "input", "tool_use_id", "content", "is_error",
                "thinking", "signature"):  # fmt: skip
        if key in block and (block[key] or key in ("text", "source", "input", "content", "thinking")):
            kept[key] = block[key]
    return kept


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + go_json(data) + b"\n\n"


def handler_error(error: ShimError, stream: bool = False) -> Response:
    """An error the chat handler wrote, as the AnthropicWriter re-encodes it (with the SSE headers the
    middleware had already set for a stream, bar the content type)."""
    headers = {k: v for k, v in SSE_HEADERS.items() if k != "Content-Type"} if stream else None
    body = go_json(error_body(error.status, error.message)) + b"\n"
    return Response(body, error.status, headers=headers, media_type="application/json")


class AnthropicWriter:
    """Anthropic's SSE events for the one streaming loop."""

    headers = SSE_HEADERS

    def __init__(self, converter: StreamConverter) -> None:
        self.converter = converter

    def frames(self, event: Piece | Done) -> bytes:
        pairs = self.converter.process(None, event) if isinstance(event, Done) else self.converter.process(event)
        return b"".join(_event(name, data) for name, data in pairs)

    def error_frame(self, error: ShimError) -> bytes:
        """Ollama's writer drops it silently; Anthropic's own error event says why."""
        return _event("error", {"type": "error", "error": error_object(error.status, error.message)})

    def error_response(self, error: ShimError) -> Response:
        return handler_error(error, stream=True)
