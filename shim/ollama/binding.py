"""Ollama's api request structs, bound with Go's semantics and error texts (`shim.gobind`) straight into the
service's typed requests: api.Message into a `Message`, api.ToolCall into a `ToolCall`."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from shim.durations import DurationError, keep_alive_seconds
from shim.engine import Message, ToolCall
from shim.gobind import (
    ANY,
    BOOL,
    INT,
    MAP,
    RAW,
    STRING,
    BindError,
    Errors,
    Struct,
    TypedStruct,
    bad_base64_offset,
    list_of,
    nested,
)
from shim.gojson import OutOfRange, unmarshal_type_error
from shim.service.requests import (
    ChatRequest,
    CopyRequest,
    DeleteRequest,
    EmbeddingRequest,
    GenerateRequest,
    ImportRequest,
    ShowRequest,
    TextEmbedRequest,
    TransferRequest,
)

THINK_LEVELS = ("high", "medium", "low", "max")
_THINK_CHOICES = '("high", "medium", "low", "max", true, or false)'


def _duration(value: Any, path: str, errors: Errors) -> Any:
    if isinstance(value, OutOfRange):  # api.Duration's own json.Unmarshal fails; the outer decoder names the field
        raise BindError(unmarshal_type_error(value, path, "float64", literal=value.literal))
    try:
        return keep_alive_seconds(value)
    except DurationError as e:
        raise BindError(str(e)) from None


def _think(value: Any, path: str, errors: Errors) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        if value not in THINK_LEVELS:
            raise BindError(f'invalid think value: "{value}" (must be "high", "medium", "low", "max", true, or false)')
        return value
    raise BindError(f"think must be a boolean or string {_THINK_CHOICES}")


def _image(value: Any, path: str, errors: Errors) -> Any:
    if not isinstance(value, str):
        errors.type_error(value, path, "api.ImageData")
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BindError(f"illegal base64 data at input byte {bad_base64_offset(value)}") from None


def _message(value: Any, path: str, errors: Errors) -> Any:
    """api.Message has its own UnmarshalJSON (it lowercases the role) over a type alias, so errors
    inside a message abort decoding and name the struct `Alias`."""
    if not isinstance(value, dict):
        errors.type_error(value, path, "api.Message")
        return None
    inner = Errors()
    bound = MESSAGE.bind_fields(value, "Alias", "", inner)
    if inner.first is not None:
        raise BindError(inner.first)
    bound["role"] = bound.get("role", "").lower()
    return bound


_TOOL_CALL = nested(
    Struct(
        "ToolCall",
        {
            "id": STRING,
            "function": nested(
                Struct("ToolCallFunction", {"index": INT, "name": STRING, "arguments": MAP}), "api.ToolCallFunction"
            ),
        },
    ),
    "api.ToolCall",
)


def _tool_call(value: Any, path: str, errors: Errors) -> ToolCall | None:
    bound = _TOOL_CALL(value, path, errors)
    if bound is None:
        return None
    function = bound.get("function", {})
    return ToolCall(function.get("name", ""), function.get("arguments"), function.get("index"), bound.get("id", ""))


MESSAGE = Struct(
    "Message",
    {
        "role": STRING,
        "content": STRING,
        "thinking": STRING,
        "images": list_of(_image, "[]api.ImageData"),
        "tool_calls": list_of(_tool_call, "[]api.ToolCall"),
        "tool_name": STRING,
        "tool_call_id": STRING,
    },
)


def _chat_message(value: Any, path: str, errors: Errors) -> Message | None:
    bound = _message(value, path, errors)
    return None if bound is None else Message(**bound)


_COMMON = {
    "model": STRING,
    "stream": BOOL,
    "format": RAW,
    "keep_alive": _duration,
    "options": MAP,
    "think": _think,
    "truncate": BOOL,
    "shift": BOOL,
    "logprobs": BOOL,
    "top_logprobs": INT,
    "_debug_render_only": BOOL,
}

GENERATE = TypedStruct(
    Struct(
        "GenerateRequest",
        {
            **_COMMON,
            "prompt": STRING,
            "suffix": STRING,
            "system": STRING,
            "template": STRING,
            "context": list_of(INT, "[]int"),
            "raw": BOOL,
            "images": list_of(_image, "[]api.ImageData"),
        },
    ),
    GenerateRequest,
)
CHAT = TypedStruct(
    Struct(
        "ChatRequest",
        {**_COMMON, "messages": list_of(_chat_message, "[]api.Message"), "tools": list_of(MAP, "api.Tools")},
    ),
    ChatRequest,
)
SHOW = TypedStruct(
    Struct(
        "ShowRequest",
        {"model": STRING, "name": STRING, "system": STRING, "template": STRING, "verbose": BOOL, "options": MAP},
    ),
    ShowRequest,
)
COPY = TypedStruct(Struct("CopyRequest", {"source": STRING, "destination": STRING}), CopyRequest)
DELETE = TypedStruct(Struct("DeleteRequest", {"model": STRING, "name": STRING}), DeleteRequest)
PULL = TypedStruct(
    Struct(
        "PullRequest",
        {"model": STRING, "name": STRING, "insecure": BOOL, "stream": BOOL, "username": STRING, "password": STRING},
    ),
    TransferRequest,
)
PUSH = TypedStruct(
    Struct("PushRequest", {"model": STRING, "name": STRING, "insecure": BOOL, "stream": BOOL}), TransferRequest
)


def _string_map(value: Any, path: str, errors: Errors) -> Any:
    if not isinstance(value, dict):
        errors.type_error(value, path, "map[string]string")
        return None
    for item in value.values():
        if not isinstance(item, str):
            errors.type_error(item, path, "string")
            return None
    return value


# Create's body stays a dict: the registry's create checks and stores it as sent.
CREATE = TypedStruct(
    Struct(
        "CreateRequest",
        {
            "model": STRING,
            "name": STRING,
            "from": STRING,
            "files": _string_map,
            "adapters": _string_map,
            "template": STRING,
            "system": STRING,
            "license": ANY,
            "parameters": MAP,
            "messages": list_of(_message, "[]api.Message"),
            "renderer": STRING,
            "parser": STRING,
            "requires": STRING,
            "stream": BOOL,
            "quantize": STRING,
            "quantization": STRING,
        },
    ),
    dict,
)

EMBED = TypedStruct(
    Struct(
        "EmbedRequest",
        {"model": STRING, "input": ANY, "truncate": BOOL, "dimensions": INT, "keep_alive": _duration, "options": MAP},
    ),
    TextEmbedRequest,
)
EMBEDDINGS = TypedStruct(
    Struct("EmbeddingRequest", {"model": STRING, "prompt": STRING, "keep_alive": _duration, "options": MAP}),
    EmbeddingRequest,
)
# mlx-shim's own route (POST /api/import), bound with the same Go-style rules as Ollama's requests.
IMPORT = TypedStruct(Struct("ImportRequest", {"models": list_of(STRING, "[]string"), "stream": BOOL}), ImportRequest)
