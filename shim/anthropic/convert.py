"""Anthropic Messages bodies to Ollama's native chat request, and chat results back to Anthropic's shapes,
as Ollama's `anthropic` package converts them.

Converting (rather than re-implementing) keeps one set of checks: after this step a request meets the
validation, capabilities and errors of /api/chat (with thinking relaxed, as Ollama does for this route).
"""

from __future__ import annotations

import base64
import binascii
import secrets
from typing import Any

from shim.engine import Done, Piece
from shim.gojson import type_name, unmarshal_type_error
from shim.jsonbytes import go_json
from shim.ollama.binding import (
    BOOL,
    FLOAT64,
    INT,
    STRING,
    BindError,
    Struct,
    _any,
    _bad_base64_offset,
    _Errors,
    _list_of,
    _nested,
)
from shim.ollama.routes import go_quote

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}
_EFFORTS = ("high", "medium", "low", "max")


class AnthropicError(Exception):
    """A request the middleware itself refuses (before the chat handler runs)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def error_body(status: int, message: str) -> dict[str, Any]:
    """anthropic.NewError: the type follows the status; every error carries a fresh request id."""
    return {"type": "error", "error": error_object(status, message), "request_id": new_id("req")}


def error_object(status: int, message: str) -> dict[str, str]:
    return {"type": _ERROR_TYPES.get(status, "api_error"), "message": message}


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


# -- binding (anthropic.MessagesRequest with encoding/json's texts) -----------------------------------------

# MessageParam has its own UnmarshalJSON: decoding it is a separate json.Unmarshal whose error aborts the
# request, re-labelled by the outer decoder as the `messages` field of MessagesRequest (type kept).
_RAW_MESSAGE = 'struct { Role string "json:\\"role\\""; Content json.RawMessage "json:\\"content\\"" }'
_STRING_FIELDS = ("type", "text", "id", "name", "tool_use_id", "thinking", "signature")  # of ContentBlock
_SOURCE_FIELDS = ("type", "media_type", "data", "url")


def _message_error(value: Any, go_type: str) -> BindError:
    message = (
        f"json: cannot unmarshal {type_name(value)} into Go struct field MessagesRequest.messages of type {go_type}"
    )
    return BindError(message)


def _content_block(block: Any) -> dict[str, Any]:
    if not isinstance(block, dict):
        raise _message_error(block, "anthropic.ContentBlock")
    out: dict[str, Any] = {}
    for key, value in block.items():
        field = key.lower()
        if value is None:
            continue
        if field == "source":
            if not isinstance(value, dict):
                raise _message_error(value, "anthropic.ImageSource")
            for name, item in value.items():
                if name.lower() in _SOURCE_FIELDS and item is not None and not isinstance(item, str):
                    raise _message_error(item, "string")
        elif field == "input":
            if not isinstance(value, dict):
                raise _message_error(value, "map[string]interface {}")
        elif field == "citations":
            if not isinstance(value, list):
                raise _message_error(value, "[]anthropic.Citation")
        elif field == "is_error" and not isinstance(value, bool):
            raise _message_error(value, "bool")
        elif field in _STRING_FIELDS and not isinstance(value, str):
            raise _message_error(value, "string")
        out[field] = value
    return out


def _messages(value: Any, path: str, errors: _Errors) -> Any:
    """[]MessageParam: unlike other lists, a null item still reaches MessageParam's own decoder."""
    if not isinstance(value, list):
        errors.type_error(value, path, "[]anthropic.MessageParam")
        return None
    return [_message_param(v) for v in value]


def _message_param(value: Any) -> dict[str, Any]:
    if value is None:
        raise BindError("unexpected end of JSON input")  # null decodes to no content: both inner Unmarshals fail
    if not isinstance(value, dict):
        raise _message_error(value, _RAW_MESSAGE)
    fields = {k.lower(): v for k, v in value.items()}
    role = fields.get("role")
    if role is not None and not isinstance(role, str):
        raise _message_error(role, "string")
    if "content" not in fields:
        raise BindError("unexpected end of JSON input")  # no content: both inner Unmarshals see no input
    content = fields["content"]
    if content is None or isinstance(content, str):
        blocks = [{"type": "text", "text": content or ""}]
    elif isinstance(content, list):
        blocks = [_content_block(b) for b in content if b is not None]
    else:
        raise _message_error(content, "[]anthropic.ContentBlock")
    return {"role": role or "", "content": blocks}


def _struct(name: str, fields: dict[str, Any]) -> Any:
    return _nested(Struct(name, fields, "anthropic"), f"anthropic.{name}")


_TOOL = _struct("Tool", {"type": STRING, "name": STRING, "description": STRING, "input_schema": _any, "max_uses": INT})
MESSAGES_REQUEST = Struct(
    "MessagesRequest",
    {
        "model": STRING,
        "max_tokens": INT,
        "messages": _messages,
        "system": _any,
        "stream": BOOL,
        "temperature": FLOAT64,
        "top_p": FLOAT64,
        "top_k": INT,
        "stop_sequences": _list_of(STRING, "[]string"),
        "tools": _list_of(_TOOL, "[]anthropic.Tool"),
        "tool_choice": _struct("ToolChoice", {"type": STRING, "name": STRING, "disable_parallel_tool_use": BOOL}),
        "thinking": _struct("ThinkingConfig", {"type": STRING, "budget_tokens": INT}),
        "metadata": _struct("Metadata", {"user_id": STRING}),
        "output_config": _struct("OutputConfig", {"effort": STRING}),
    },
    "anthropic",
)


def bind(body: Any) -> dict[str, Any]:
    """The request as the middleware binds and checks it, before conversion."""
    try:
        req = MESSAGES_REQUEST.bind(body)
    except BindError as e:
        raise AnthropicError(e.message) from None
    if not req.get("model"):
        raise AnthropicError("model is required")
    if req.get("max_tokens", 0) <= 0:
        raise AnthropicError("max_tokens is required and must be positive")
    if not req.get("messages"):
        raise AnthropicError("messages is required")
    return req


# -- request conversion (anthropic.FromMessagesRequest) -----------------------------------------------------


def chat_request(req: dict[str, Any]) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    system = req.get("system")
    if isinstance(system, str) and system:
        messages.append({"role": "system", "content": system})
    elif isinstance(system, list):
        text = "".join(
            b["text"]
            for b in system
            if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
        )
        if text:
            messages.append({"role": "system", "content": text})
    for message in req["messages"]:
        messages += _message(message)

    options: dict[str, Any] = {"num_predict": req["max_tokens"]}
    options |= {key: req[key] for key in ("temperature", "top_p", "top_k") if key in req}
    if req.get("stop_sequences"):
        options["stop"] = req["stop_sequences"]

    native: dict[str, Any] = {"model": req["model"], "messages": messages, "options": options}
    tools = [_tool(t) for t in req.get("tools", [])]
    if tools:
        native["tools"] = tools
    think = _think(req)
    if think is not None:
        native["think"] = think
    return native


def _think(req: dict[str, Any]) -> bool | str | None:
    kind = req.get("thinking", {}).get("type")
    if kind == "enabled":
        return True
    if kind == "disabled":
        return False
    effort = req.get("output_config", {}).get("effort", "").strip().lower()
    effort = "high" if effort == "xhigh" else effort
    return effort if effort in _EFFORTS else None


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    schema = tool.get("input_schema")
    name = tool.get("name", "")
    go_error = _schema_error(schema)
    if go_error:
        raise AnthropicError(f"invalid input_schema for tool {go_quote(name)}: {go_error}")
    function: dict[str, Any] = {"name": name, "description": tool.get("description", ""),
                                "parameters": schema or {}}  # fmt: skip
    return {"type": "function", "function": function}


def _schema_error(schema: Any) -> str:
    """What json.Unmarshal into api.ToolFunctionParameters says of a schema's outer shape ("" if nothing)."""
    if schema is None:
        return ""
    if not isinstance(schema, dict):
        return f"json: cannot unmarshal {type_name(schema)} into Go value of type api.ToolFunctionParameters"
    fields = {k.lower(): v for k, v in schema.items() if v is not None}
    if "type" in fields and not isinstance(fields["type"], str):
        return unmarshal_type_error(fields["type"], "ToolFunctionParameters.type", "string")
    required = fields.get("required", [])
    if not isinstance(required, list):
        return unmarshal_type_error(required, "ToolFunctionParameters.required", "[]string")
    for item in required:
        if item is not None and not isinstance(item, str):
            return unmarshal_type_error(item, "ToolFunctionParameters.required", "string")
    return ""


def _message(message: dict[str, Any]) -> list[dict[str, Any]]:
    """convertMessage: one Anthropic message becomes tool results plus at most one chat message."""
    role = message["role"].lower()
    text: list[str] = []
    images: list[bytes] = []
    calls: list[dict[str, Any]] = []
    thinking = ""
    results: list[dict[str, Any]] = []
    for block in message["content"]:
        kind = block.get("type")
        if kind == "text":
            text.append(block.get("text", ""))
        elif kind == "image":
            if "source" not in block:
                raise AnthropicError("invalid image source")
            images.append(_image(block["source"]))
        elif kind == "tool_use":
            if not block.get("id"):
                raise AnthropicError("tool_use block missing required 'id' field")
            if not block.get("name"):
                raise AnthropicError("tool_use block missing required 'name' field")
            calls.append({"id": block["id"], "function": {"name": block["name"], "arguments": block.get("input", {})}})
        elif kind == "tool_result":
            content, result_images = _tool_result(block.get("content"))
            result: dict[str, Any] = {"role": "tool", "content": content, "tool_call_id": block.get("tool_use_id", "")}
            if result_images:
                result["images"] = result_images
            results.append(result)
        elif kind == "thinking":
            thinking = block.get("thinking", thinking)
    out = results if role == "user" else []  # a user's tool results come before the rest of its message
    joined = "".join(text)
    if joined or images or calls or thinking:
        converted: dict[str, Any] = {"role": role, "content": joined}
        if images:
            converted["images"] = images
        if calls:
            converted["tool_calls"] = calls
        if thinking:
            converted["thinking"] = thinking
        out = out + [converted]
    return out if role == "user" else out + results


def _image(source: dict[str, Any]) -> bytes:
    kind = source.get("type", "")
    if kind != "base64":
        raise AnthropicError(f"invalid image source type: {kind}. Only base64 images are supported.")
    data = source.get("data", "")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise AnthropicError(
            f"invalid base64 image data: illegal base64 data at input byte {_bad_base64_offset(data)}"
        ) from None


def _tool_result(content: Any) -> tuple[str, list[bytes]]:
    if isinstance(content, str):
        return content, []
    if not isinstance(content, list):
        return "", []
    text: list[str] = []
    images: list[bytes] = []
    for block in content:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            text.append(block["text"])
        elif block.get("type") == "image":
            source = block.get("source")
            if not isinstance(source, dict):
                raise AnthropicError("invalid tool_result image source")
            images.append(_image({k: v for k, v in source.items() if isinstance(v, str)}))
    return "".join(text), images


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


def _tool_use(call: dict[str, Any], arguments: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": call.get("id", ""), "name": call["function"]["name"], "input": arguments}


def message(message_id: str, model: str, piece: Piece, done: Done) -> dict[str, Any]:
    """ToMessagesResponse: thinking, text, then one tool_use block per call; no blocks is `null`, as Go."""
    content = []
    if piece.thinking:
        content.append({"type": "thinking", "thinking": piece.thinking})
    if piece.content:
        content.append({"type": "text", "text": piece.content})
    content += [_tool_use(c, c["function"]["arguments"]) for c in piece.tool_calls]
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
            if call.get("id", "") in self.sent:
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
            arguments = go_json(call["function"]["arguments"]).decode()
            events.append(self._delta({"type": "input_json_delta", "partial_json": arguments}))
            events.append(self._stop())
            self.sent.add(call.get("id", ""))
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
