"""Anthropic Messages bodies to Ollama's native chat request, and chat results back to Anthropic's shapes,
as Ollama's `anthropic` package converts them.

Converting (rather than re-implementing) keeps one set of checks: after this step a request meets the
validation, capabilities and errors of /api/chat (with thinking relaxed, as Ollama does for this route).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from shim.engine import Message, ToolCall
from shim.errors import Kind, ShimError
from shim.gobind import (
    ANY,
    BOOL,
    FLOAT64,
    INT,
    STRING,
    BindError,
    Errors,
    Struct,
    bad_base64_offset,
    list_of,
    nested,
)
from shim.gojson import type_name, unmarshal_type_error
from shim.jsonbytes import go_quote
from shim.service import ChatRequest

_EFFORTS = ("high", "medium", "low", "max")


class AnthropicError(ShimError):
    """A request the middleware itself refuses (before the chat handler runs): bad input, which Ollama
    answers in another layout than the handler's errors (see routes)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, Kind.BAD_INPUT)


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


def _messages(value: Any, path: str, errors: Errors) -> Any:
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
    return nested(Struct(name, fields, "anthropic"), f"anthropic.{name}")


_TOOL = _struct("Tool", {"type": STRING, "name": STRING, "description": STRING, "input_schema": ANY, "max_uses": INT})
MESSAGES_REQUEST = Struct(
    "MessagesRequest",
    {
        "model": STRING,
        "max_tokens": INT,
        "messages": _messages,
        "system": ANY,
        "stream": BOOL,
        "temperature": FLOAT64,
        "top_p": FLOAT64,
        "top_k": INT,
        "stop_sequences": list_of(STRING, "[]string"),
        "tools": list_of(_TOOL, "[]anthropic.Tool"),
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


def chat_request(req: dict[str, Any]) -> ChatRequest:
    messages: list[Message] = []
    system = req.get("system")
    if isinstance(system, str) and system:
        messages.append(Message("system", system))
    elif isinstance(system, list):
        text = "".join(
            b["text"]
            for b in system
            if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
        )
        if text:
            messages.append(Message("system", text))
    for message in req["messages"]:
        messages += _message(message)

    options: dict[str, Any] = {"num_predict": req["max_tokens"]}
    options |= {key: req[key] for key in ("temperature", "top_p", "top_k") if key in req}
    if req.get("stop_sequences"):
        options["stop"] = req["stop_sequences"]
    tools = [_tool(t) for t in req.get("tools", [])]
    return ChatRequest(model=req["model"], messages=messages, options=options, tools=tools or None, think=_think(req))


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


def _message(message: dict[str, Any]) -> list[Message]:
    """convertMessage: one Anthropic message becomes tool results plus at most one chat message."""
    role = message["role"].lower()
    text: list[str] = []
    images: list[bytes] = []
    calls: list[ToolCall] = []
    thinking = ""
    results: list[Message] = []
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
            calls.append(ToolCall(block["name"], block.get("input", {}), index=None, id=block["id"]))
        elif kind == "tool_result":
            content, result_images = _tool_result(block.get("content"))
            results.append(Message("tool", content, tool_call_id=block.get("tool_use_id", ""), images=result_images))
        elif kind == "thinking":
            thinking = block.get("thinking", thinking)
    out = results if role == "user" else []  # a user's tool results come before the rest of its message
    joined = "".join(text)
    if joined or images or calls or thinking:
        out = out + [Message(role, joined, thinking, calls, images=images)]
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
            f"invalid base64 image data: illegal base64 data at input byte {bad_base64_offset(data)}"
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
