"""/v1/responses request bodies to native chat requests, as Ollama v0.24.0's ResponsesMiddleware binds them
(`openai.ResponsesRequest`) and `FromResponsesRequest` converts them, error texts included.

Stateless, as Ollama: `previous_response_id`, `store`, `conversation` and `include` are read and dropped; the
whole conversation comes in `input`. What the answer echoes back (instructions, tools, sampling, text format,
reasoning) is kept in `Echo` for the writer.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from shim.engine import Message, ToolCall
from shim.errors import Kind, ShimError
from shim.gobind import ANY, BOOL, FLOAT64, INT, RAW, STRING, BindError, Struct, list_of, nested
from shim.gojson import GoJSONError, decode, type_name, unmarshal_value_error
from shim.jsonbytes import go_quote
from shim.service import ChatRequest

_EFFORTS = {"none": False, "low": "low", "medium": "medium", "high": "high", "max": "max"}
_NO_IMAGE_URLS = "image URLs are not currently supported, please use base64 encoded data instead"
_IMAGE_PREFIXES = tuple(f"data:image/{kind};base64," for kind in ("jpeg", "jpg", "png", "webp"))


_TOOL = Struct(
    "ResponsesTool",
    {"type": STRING, "name": STRING, "description": STRING, "strict": BOOL, "parameters": ANY},
    "openai",
)
_TEXT_FORMAT = Struct("ResponsesTextFormat", {"type": STRING, "name": STRING, "schema": RAW, "strict": BOOL}, "openai")
_REASONING = Struct("ResponsesReasoning", {"effort": STRING, "generate_summary": STRING, "summary": STRING}, "openai")
RESPONSES = Struct(
    "ResponsesRequest",
    {
        "model": STRING,
        "background": BOOL,
        "conversation": RAW,
        "include": list_of(STRING, "[]string"),
        "input": RAW,  # its own decoder (`_input`), whose errors stop binding first
        "instructions": STRING,
        "max_output_tokens": INT,
        "reasoning": nested(_REASONING, "openai.ResponsesReasoning"),
        "temperature": FLOAT64,
        "text": nested(
            Struct("ResponsesText", {"format": nested(_TEXT_FORMAT, "openai.ResponsesTextFormat")}, "openai"),
            "openai.ResponsesText",
        ),
        "top_p": FLOAT64,
        "truncation": STRING,
        "tools": list_of(nested(_TOOL, "openai.ResponsesTool"), "[]openai.ResponsesTool"),
        "stream": BOOL,
    },
    "openai",
)


@dataclass(frozen=True)
class Echo:
    """The request's fields a Responses answer repeats (ResponsesRequest as Ollama's writer reads it)."""

    model: str
    instructions: str
    tools: list[dict[str, Any]]
    truncation: str | None
    text_format: dict[str, Any] | None
    effort: str
    summary: str
    top_p: float | None
    temperature: float | None
    max_output_tokens: int | None
    background: bool
    stream: bool


def responses_request(body: bytes) -> tuple[ChatRequest, Echo]:
    """The chat request the body converts to, and what the answer echoes; a ShimError (400) with
    Ollama's text for a body it would refuse."""
    try:
        data = decode(body)
        items = _input(_field(data, "input"))  # a custom UnmarshalJSON: its error ends decoding at once
        bound = RESPONSES.bind(data)
    except (GoJSONError, BindError) as e:
        raise ShimError(e.message, Kind.BAD_INPUT) from None
    reasoning = bound.get("reasoning", {})
    fmt = bound.get("text", {}).get("format")
    echo = Echo(
        model=bound.get("model", ""),
        instructions=bound.get("instructions", ""),
        tools=bound.get("tools", []),
        truncation=bound.get("truncation"),
        text_format=fmt,
        effort=reasoning.get("effort", ""),
        summary=reasoning.get("summary", ""),
        top_p=bound.get("top_p"),
        temperature=bound.get("temperature"),
        max_output_tokens=bound.get("max_output_tokens"),
        background=bound.get("background", False),
        stream=bound.get("stream", False),
    )
    return _native(echo, items), echo


def _field(data: Any, name: str) -> Any:
    """A top-level key as encoding/json finds it: exact or any case, the last one written winning."""
    if not isinstance(data, dict):
        return None
    found = None
    for key, value in data.items():
        if key.lower() == name:
            found = value
    return found


# -- input items (ResponsesInput.UnmarshalJSON and the item types' own decoders) ----------------------------


def _input(value: Any) -> list[dict[str, Any]]:
    """Every input as a list of items; a string is one user message (Go keeps it apart, with the same effect)."""
    if value is None:
        return []
    if isinstance(value, str):
        text = [{"type": "input_text", "text": value}]
        return [{"type": "message", "role": "user", "content": text}] if value else []
    if not isinstance(value, list):
        raise BindError(f"input must be a string or array: {_cannot(value, '[]json.RawMessage')}")
    return [_item(i, raw) for i, raw in enumerate(value)]


def _cannot(value: Any, go_type: str) -> str:
    return f"json: cannot unmarshal {type_name(value)} into Go value of type {go_type}"


_PEEK = 'struct { Type string "json:\\"type\\""; Role string "json:\\"role\\"" }'
_ITEMS = {
    "message": Struct("", {"type": STRING, "role": STRING, "content": RAW}),
    "function_call": Struct(
        "ResponsesFunctionCall", {"id": STRING, "type": STRING, "call_id": STRING, "name": STRING, "arguments": STRING}
    ),
    "function_call_output": Struct("", {"type": STRING, "call_id": STRING, "output": RAW}),
    "reasoning": Struct("ResponsesReasoningInput", {"id": STRING, "type": STRING, "encrypted_content": STRING}),
}


def _item(i: int, raw: Any) -> dict[str, Any]:
    try:
        if not isinstance(raw, dict) and raw is not None:
            raise BindError(_cannot(raw, _PEEK))
        peek = Struct("", {"type": STRING, "role": STRING}).bind(raw)
        kind = peek.get("type", "") or ("message" if peek.get("role") else "")
        if kind not in _ITEMS:
            missing = "input item missing required 'type' field"
            raise BindError(f"unknown input item type: {go_quote(kind)}" if kind else missing)
        item = _ITEMS[kind].bind(raw)
        item["type"] = kind
        if kind == "message":
            item["content"] = _content(item.get("content"), "content")
        elif kind == "function_call_output":
            item["output"] = _output(item.get("output"))
        return item
    except BindError as e:
        raise BindError(f"input[{i}]: {e.message}") from None


def _content(value: Any, name: str) -> list[dict[str, Any]]:
    """A message's `content` (or an output's `output`): a string is one input_text part."""
    if value is None:
        return []
    if isinstance(value, str):
        return [{"type": "input_text", "text": value}]
    if not isinstance(value, list):
        raise BindError(f"{name} must be a string or array: {_cannot(value, '[]json.RawMessage')}")
    parts = []
    for i, part in enumerate(value):
        try:
            parts.append(_part(part))
        except BindError as e:
            raise BindError(f"{name}[{i}]: {e.message}") from None
    return parts


_PARTS = {
    "input_text": Struct("ResponsesTextContent", {"type": STRING, "text": STRING}, "openai"),
    "output_text": Struct("ResponsesOutputTextContent", {"type": STRING, "text": STRING}, "openai"),
    "input_image": Struct(
        "ResponsesImageContent", {"type": STRING, "detail": STRING, "file_id": STRING, "image_url": STRING}, "openai"
    ),
    "input_file": Struct(
        "ResponsesFileContent",
        {"type": STRING, "file_data": STRING, "file_id": STRING, "file_url": STRING, "filename": STRING},
        "openai",
    ),
}


def _part(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict) and raw is not None:
        raise BindError(_cannot(raw, 'struct { Type string "json:\\"type\\"" }'))
    kind = Struct("", {"type": STRING}).bind(raw).get("type", "")
    if kind not in _PARTS:
        raise BindError(f"unknown content type: {kind}")
    part = _PARTS[kind].bind(raw)
    part["type"] = kind
    return part


def _output(value: Any) -> str | list[dict[str, Any]]:
    """A function_call_output's `output`: its text, or its content items when sent as a list."""
    if isinstance(value, str) or value is None:
        return value or ""
    return _content(value, "output")


# -- FromResponsesRequest ---------------------------------------------------------------------------------


def _native(echo: Echo, items: list[dict[str, Any]]) -> ChatRequest:
    messages: list[Message] = []
    if echo.instructions:
        messages.append(Message("system", echo.instructions))
    pending_thinking = ""  # a reasoning item joins the next assistant message
    for item in items:
        kind = item["type"]
        if kind == "reasoning":
            pending_thinking = item.get("encrypted_content", "")
        elif kind == "message":
            content, images = _text_and_images(item["content"])
            message = Message(item.get("role", ""), content, images=images)
            if message.role == "assistant" and pending_thinking:
                message.thinking, pending_thinking = pending_thinking, ""
            messages.append(message)
        elif kind == "function_call":
            arguments = _arguments(item.get("arguments", ""))
            call = ToolCall(item.get("name", ""), arguments, index=None, id=item.get("call_id", ""))
            if messages and messages[-1].role == "assistant":
                messages[-1].tool_calls.append(call)
            else:
                messages.append(Message("assistant", tool_calls=[call]))
            if pending_thinking:
                messages[-1].thinking, pending_thinking = pending_thinking, ""
        else:  # function_call_output
            output = item["output"]
            content, images = (output, []) if isinstance(output, str) else _text_and_images(output)
            messages.append(Message("tool", content, tool_call_id=item.get("call_id", ""), images=images))
    if pending_thinking:
        messages.append(Message("assistant", thinking=pending_thinking))
    for message in messages:  # compared as sent above; ChatHandler's binding then lowercases them
        message.role = message.role.lower()

    options: dict[str, Any] = {"temperature": echo.temperature if echo.temperature is not None else 1.0}
    if echo.top_p is not None:  # unlike /v1/chat/completions, no default: the model's own applies
        options["top_p"] = echo.top_p
    if echo.max_output_tokens is not None:
        options["num_predict"] = echo.max_output_tokens
    think: bool | str | None = None
    if echo.effort:
        if echo.effort not in _EFFORTS:
            raise ShimError(
                f'invalid reasoning value: "{echo.effort}" (must be "high", "medium", "low", "max", or "none")',
                Kind.BAD_INPUT,
            )
        think = _EFFORTS[echo.effort]
    fmt = None
    if echo.text_format and echo.text_format.get("type") == "json_schema" and "schema" in echo.text_format:
        fmt = echo.text_format["schema"]
    return ChatRequest(
        model=echo.model,
        messages=messages,
        options=options,
        stream=echo.stream,
        think=think,
        tools=[_tool(t) for t in echo.tools] or None,
        format=fmt,
    )


def _arguments(text: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = decode(text.encode())
    except GoJSONError as e:
        raise ShimError(f"failed to parse function call arguments: {e.message}", Kind.BAD_INPUT) from None
    if not isinstance(value, dict):
        message = unmarshal_value_error(value, "map[string]interface {}")
        raise ShimError(f"failed to parse function call arguments: {message}", Kind.BAD_INPUT)
    return value


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    """api.Tool from the Responses shape, which does not nest the function."""
    function: dict[str, Any] = {"name": tool.get("name", "")}
    if tool.get("description"):
        function["description"] = tool["description"]
    if tool.get("parameters") is not None:
        function["parameters"] = tool["parameters"]
    return {"type": tool.get("type", ""), "function": function}


def _text_and_images(parts: list[dict[str, Any]]) -> tuple[str, list[bytes]]:
    """convertResponsesContent: the texts joined, images decoded, files refused."""
    text, images = "", []
    for part in parts:
        kind = part["type"]
        if kind in ("input_text", "output_text"):
            text += part.get("text", "")
        elif kind == "input_image" and part.get("image_url"):
            images.append(_image(part["image_url"]))
        elif kind == "input_file":
            raise ShimError("file inputs are not currently supported", Kind.BAD_INPUT)
    return text, images


def _image(url: str) -> bytes:
    """decodeImageURL: base64 data URLs of the four image types (or no type) only."""
    if url.startswith(("http://", "https://")):
        raise ShimError(_NO_IMAGE_URLS, Kind.BAD_INPUT)
    if url.startswith("data:;base64,"):
        data = url.removeprefix("data:;base64,")
    elif url.startswith(_IMAGE_PREFIXES):
        data = url.split(";base64,", 1)[1]
    else:
        raise ShimError("invalid image input", Kind.BAD_INPUT)
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ShimError("invalid image input", Kind.BAD_INPUT) from None
