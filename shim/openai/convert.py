"""OpenAI request bodies to Ollama's native ones (the service's typed requests), as Ollama's openai middleware
converts them.

Converting (rather than re-implementing) keeps one set of checks: after this step a request meets exactly
the validation, capabilities and errors of /api/chat or /api/generate.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import replace
from typing import Any

import orjson

from shim.engine import Message, ToolCall
from shim.errors import Kind, ShimError
from shim.service import ChatRequest, GenerateRequest

_EFFORTS = {"none": False, "minimal": "low", "low": "low", "medium": "medium", "high": "high", "max": "max",
            "xhigh": "max", "ultra": "max"}  # fmt: skip


def go_type(value: Any) -> str:
    """How Go names a decoded JSON value's type (encoding/json into interface{})."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "float64"
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, list):
        return "[]interface {}"
    return "string"


def chat_request(body: dict[str, Any]) -> ChatRequest:
    messages = body.get("messages")
    if not messages:
        raise ShimError("[] is too short - 'messages'", Kind.BAD_INPUT)
    if not isinstance(messages, list):
        raise ShimError("invalid message format", Kind.BAD_INPUT)
    return ChatRequest(
        model=body.get("model") or "",
        messages=_messages(messages),
        options=_options(body),
        tools=body.get("tools") or None,
        think=_think(body),
        format=_format(body.get("response_format")),
        logprobs=bool(body.get("logprobs")),
        top_logprobs=body.get("top_logprobs") or 0,  # passed on whatever `logprobs` says, as Ollama does
        debug_render_only=bool(body.get("_debug_render_only")),
    )


def completion_request(body: dict[str, Any]) -> GenerateRequest:
    top_logprobs = max(body.get("logprobs") or 0, 0)  # `logprobs: n` asks for n alternatives per token
    return GenerateRequest(
        model=body.get("model") or "",
        prompt=body.get("prompt") or "",
        options=_options(body),
        suffix=body.get("suffix") or "",
        logprobs=top_logprobs > 0,
        top_logprobs=top_logprobs,
        debug_render_only=bool(body.get("_debug_render_only")),
    )


def _options(body: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's defaults differ from Ollama's: temperature and top_p are 1.0 unless given."""
    options: dict[str, Any] = {
        "temperature": body["temperature"] if body.get("temperature") is not None else 1.0,
        "top_p": body["top_p"] if body.get("top_p") else 1.0,
    }
    max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
    if max_tokens is not None:
        options["num_predict"] = max_tokens
    for key in ("seed", "frequency_penalty", "presence_penalty"):
        if body.get(key) is not None:
            options[key] = body[key]
    stop = body.get("stop")
    if isinstance(stop, str):
        options["stop"] = [stop]
    elif isinstance(stop, list):
        for item in stop:
            if not isinstance(item, str):
                raise ShimError(f"invalid type for 'stop' field: {go_type(item)}", Kind.BAD_INPUT)
        options["stop"] = stop
    elif stop is not None:
        raise ShimError(f"invalid type for 'stop' field: {go_type(stop)}", Kind.BAD_INPUT)
    return options


def _format(response_format: Any) -> Any:
    """`response_format` as Ollama's middleware maps it (type trimmed, any case): json_object is "json",
    json_schema its `json_schema.schema` as given, anything else (`text`, no schema) no format."""
    if not isinstance(response_format, dict):
        return None
    kind = response_format.get("type")
    kind = kind.strip().lower() if isinstance(kind, str) else ""
    if kind == "json_object":
        return "json"
    if kind == "json_schema":
        json_schema = response_format.get("json_schema")
        return json_schema.get("schema") if isinstance(json_schema, dict) else None
    return None


def _think(body: dict[str, Any]) -> bool | str | None:
    effort = body.get("reasoning_effort") or (body.get("reasoning") or {}).get("effort")
    if effort is None:
        return None
    if effort not in _EFFORTS:
        choices = ", ".join(f'"{e}"' for e in _EFFORTS)
        raise ShimError(f'invalid reasoning value: "{effort}" (must be {choices})', Kind.BAD_INPUT)
    return _EFFORTS[effort]


def _messages(messages: list[Any]) -> list[Message]:
    out: list[Message] = []
    names_by_call_id: dict[str, str] = {}
    for m in messages:
        if not isinstance(m, dict):
            raise ShimError("invalid message format", Kind.BAD_INPUT)
        role = (m.get("role") or "").lower()  # api.Message lowercases the role when ChatHandler binds it
        calls = [_tool_call(i, call, names_by_call_id) for i, call in enumerate(m.get("tool_calls") or [])]
        tool_name = (m.get("name") or names_by_call_id.get(m.get("tool_call_id", ""), "")) if role == "tool" else ""
        base = Message(role, thinking=m.get("reasoning") or "", tool_calls=calls, tool_name=tool_name)
        content = m.get("content")
        if content is None or isinstance(content, str):
            out.append(replace(base, content=content or ""))
        elif isinstance(content, list):
            out += [_part(base, part) for part in content]  # each part is its own message, as Ollama
        else:
            raise ShimError(f"invalid message content type: {go_type(content)}", Kind.BAD_INPUT)
    return out


def _tool_call(index: int, call: Any, names: dict[str, str]) -> ToolCall:
    """FromCompletionToolCall: the arguments' JSON string decoded into api.ToolCallFunctionArguments (an
    object, or null); anything else is Ollama's `invalid tool call arguments`."""
    function = (call or {}).get("function") or {}
    arguments = function.get("arguments") or "{}"
    if isinstance(arguments, str):
        try:
            arguments = orjson.loads(arguments)
        except orjson.JSONDecodeError:
            raise ShimError("invalid tool call arguments", Kind.BAD_INPUT) from None
    if arguments is not None and not isinstance(arguments, dict):
        raise ShimError("invalid tool call arguments", Kind.BAD_INPUT)
    names[call.get("id", "")] = function.get("name", "")
    return ToolCall(function.get("name", ""), arguments, index, call.get("id", ""))


def _part(base: Message, part: Any) -> Message:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text":
        return replace(base, content=part.get("text", ""))
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url", "") if isinstance(image, dict) else image if isinstance(image, str) else ""
        if url.startswith(("http://", "https://")):
            raise ShimError(
                "image URLs are not currently supported, please use base64 encoded data instead", Kind.BAD_INPUT
            )
        _, _, data = url.partition(";base64,")
        try:
            return replace(base, content="", images=[base64.b64decode(data, validate=True)])
        except (binascii.Error, ValueError):
            raise ShimError("invalid image input", Kind.BAD_INPUT) from None
    raise ShimError("invalid message format", Kind.BAD_INPUT)
