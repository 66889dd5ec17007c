"""Binding decoded JSON to Ollama's request structs with Go's semantics and Go's error texts.

Go fills a struct field by field: null leaves the zero value, field names match case-insensitively,
unknown keys are ignored, a wrong JSON type is remembered and reported after decoding finishes (the first
one wins), while an error from a custom decoder (keep_alive, think, images, message) stops at once.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shim.durations import DurationError, keep_alive_seconds
from shim.gojson import OutOfRange, type_name, unmarshal_type_error

THINK_LEVELS = ("high", "medium", "low", "max")
_THINK_CHOICES = '("high", "medium", "low", "max", true, or false)'


class BindError(ValueError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


Check = Callable[[Any, str, "Errors"], Any]


class Errors:
    def __init__(self) -> None:
        self.first: str | None = None

    def type_error(self, value: Any, path: str, go_type: str) -> None:
        if self.first is None:
            # Go names the number ("number 1.5") only when it fails to fit a numeric field.
            literal = repr(value) if isinstance(value, float) and go_type == "int" else None
            if isinstance(value, OutOfRange) or (type(value) is int and go_type == "int"):
                literal = getattr(value, "literal", str(value))
            self.first = unmarshal_type_error(value, path, go_type, literal=literal)


def _scalar(python_type: type | tuple[type, ...], go_type: str) -> Check:
    def check(value: Any, path: str, errors: Errors) -> Any:
        # bool is an int in Python, never in Go; and Go rejects 1.0 for an int field.
        if (
            isinstance(value, python_type)
            and (python_type is bool or not isinstance(value, bool))
            and _fits(value, go_type)
        ):
            return value
        errors.type_error(value, path, go_type)
        return None

    return check


def _fits(number: Any, go_type: str) -> bool:
    """A number past float64 (1e400) or, for an int field, past int64 fits no Go number."""
    return not isinstance(number, OutOfRange) and (go_type != "int" or -(2**63) <= number < 2**63)


STRING = _scalar(str, "string")
BOOL = _scalar(bool, "bool")
INT = _scalar(int, "int")
FLOAT64 = _scalar((int, float), "float64")
FLOAT32 = _scalar((int, float), "float32")


def _any(value: Any, path: str, errors: Errors) -> Any:
    if (number := _out_of_range(value)) is not None:
        errors.type_error(number, path, "float64")  # Go decodes a number inside `any` as a float64
    return value


ANY: Check = _any  # any JSON value, as Go's `any`


def _raw(value: Any, path: str, errors: Errors) -> Any:
    """A json.RawMessage field (`format`, a schema): Go keeps its bytes undecoded, so no number fails here."""
    return value


def _out_of_range(value: Any) -> OutOfRange | None:
    """The first number in `value` too large for float64 (iteratively: bodies nest up to 10,000 deep)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, OutOfRange):
            return item
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return None


def _map(value: Any, path: str, errors: Errors) -> Any:
    if isinstance(value, dict):
        return _any(value, path, errors)
    errors.type_error(value, path, "map[string]interface {}")
    return None


def list_of(item: Check, go_type: str) -> Check:
    def check(value: Any, path: str, errors: Errors) -> Any:
        if not isinstance(value, list):
            errors.type_error(value, path, go_type)
            return None
        return [item(v, path, errors) for v in value if v is not None]

    return check


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


def bad_base64_offset(text: str) -> int:
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
    for i, c in enumerate(text):
        if c == "=":
            return i if len(text) % 4 or i < len(text) - 2 else len(text)
        if c not in alphabet:
            return i
    return len(text) - len(text) % 4


@dataclass(frozen=True)
class Struct:
    name: str
    fields: dict[str, Check]
    package: str = "api"

    def bind(self, data: Any) -> dict[str, Any]:
        """Return {field: value} for fields present and non-null; raise BindError with Go's text."""
        errors = Errors()
        out = self._bind(data, self.name, "", errors)
        if errors.first is not None:
            raise BindError(errors.first)
        return out

    def _bind(self, data: Any, struct: str, prefix: str, errors: Errors) -> dict[str, Any]:
        if not isinstance(data, dict):
            if data is None:
                return {}
            raise BindError(f"json: cannot unmarshal {type_name(data)} into Go value of type {self.package}.{struct}")
        out: dict[str, Any] = {}
        lowered = {k.lower(): k for k in self.fields}
        for key, value in data.items():
            field = key if key in self.fields else lowered.get(key.lower())
            if field is None or value is None:
                continue
            checked = self.fields[field](value, f"{struct}.{prefix}{field}", errors)
            if checked is not None:
                out[field] = checked
        return out


def nested(struct: Struct, go_type: str) -> Check:
    """A struct field decoded by encoding/json itself: errors inside it name the inner struct and the
    field path from the root ("StreamOptions.stream_options.include_usage")."""

    def check(value: Any, path: str, errors: Errors) -> Any:
        if not isinstance(value, dict):
            errors.type_error(value, path, go_type)
            return None
        return struct._bind(value, struct.name, path.split(".", 1)[1] + ".", errors)

    return check


def _message(value: Any, path: str, errors: Errors) -> Any:
    """api.Message has its own UnmarshalJSON (it lowercases the role) over a type alias, so errors
    inside a message abort decoding and name the struct `Alias`."""
    if not isinstance(value, dict):
        errors.type_error(value, path, "api.Message")
        return None
    inner = Errors()
    bound = MESSAGE._bind(value, "Alias", "", inner)
    if inner.first is not None:
        raise BindError(inner.first)
    bound["role"] = bound.get("role", "").lower()
    return bound


TOOL_CALL = Struct(
    "ToolCall",
    {
        "id": STRING,
        "function": nested(
            Struct("ToolCallFunction", {"index": INT, "name": STRING, "arguments": _map}), "api.ToolCallFunction"
        ),
    },
)
MESSAGE = Struct(
    "Message",
    {
        "role": STRING,
        "content": STRING,
        "thinking": STRING,
        "images": list_of(_image, "[]api.ImageData"),
        "tool_calls": list_of(nested(TOOL_CALL, "api.ToolCall"), "[]api.ToolCall"),
        "tool_name": STRING,
        "tool_call_id": STRING,
    },
)

_COMMON = {
    "model": STRING,
    "stream": BOOL,
    "format": _raw,
    "keep_alive": _duration,
    "options": _map,
    "think": _think,
    "truncate": BOOL,
    "shift": BOOL,
    "logprobs": BOOL,
    "top_logprobs": INT,
    "_debug_render_only": BOOL,
}

GENERATE = Struct(
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
)

CHAT = Struct(
    "ChatRequest",
    {**_COMMON, "messages": list_of(_message, "[]api.Message"), "tools": list_of(_map, "api.Tools")},
)

SHOW = Struct(
    "ShowRequest",
    {"model": STRING, "name": STRING, "system": STRING, "template": STRING, "verbose": BOOL, "options": _map},
)

COPY = Struct("CopyRequest", {"source": STRING, "destination": STRING})
DELETE = Struct("DeleteRequest", {"model": STRING, "name": STRING})
PULL = Struct(
    "PullRequest",
    {"model": STRING, "name": STRING, "insecure": BOOL, "stream": BOOL, "username": STRING, "password": STRING},
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


CREATE = Struct(
    "CreateRequest",
    {
        "model": STRING,
        "name": STRING,
        "from": STRING,
        "files": _string_map,
        "adapters": _string_map,
        "template": STRING,
        "system": STRING,
        "license": _any,
        "parameters": _map,
        "messages": list_of(_message, "[]api.Message"),
        "renderer": STRING,
        "parser": STRING,
        "requires": STRING,
        "stream": BOOL,
        "quantize": STRING,
        "quantization": STRING,
    },
)

PUSH = Struct("PushRequest", {"model": STRING, "name": STRING, "insecure": BOOL, "stream": BOOL})


# The /v1 request structs of Ollama's openai package, checked before conversion as its middleware binds
# them (tools, tool calls and schemas are checked for their outer JSON type only; their contents are the
# tools and structured-output code's to judge).
_STREAM_OPTIONS = nested(Struct("StreamOptions", {"include_usage": BOOL}, "openai"), "openai.StreamOptions")
_JSON_SCHEMA = nested(Struct("JsonSchema", {"schema": _raw}, "openai"), "openai.JsonSchema")
_RESPONSE_FORMAT = Struct("ResponseFormat", {"type": STRING, "json_schema": _JSON_SCHEMA}, "openai")
_OPENAI_FUNCTION_CALL = Struct("", {"name": STRING, "arguments": STRING}, "openai")  # an anonymous struct in Go
_OPENAI_TOOL_CALL = Struct(
    "ToolCall",
    {
        "id": STRING,
        "index": INT,
        "type": STRING,
        "function": nested(
            _OPENAI_FUNCTION_CALL, 'struct { Name string "json:\\"name\\""; Arguments string "json:\\"arguments\\"" }'
        ),
    },
    "openai",
)
_OPENAI_MESSAGE = Struct(
    "Message",
    {
        "role": STRING,
        "content": _any,
        "reasoning": STRING,
        "tool_calls": list_of(nested(_OPENAI_TOOL_CALL, "openai.ToolCall"), "[]openai.ToolCall"),
        "name": STRING,
        "tool_call_id": STRING,
    },
    "openai",
)

CHAT_COMPLETION = Struct(
    "ChatCompletionRequest",
    {
        "model": STRING,
        "messages": list_of(nested(_OPENAI_MESSAGE, "openai.Message"), "[]openai.Message"),
        "stream": BOOL,
        "stream_options": _STREAM_OPTIONS,
        "max_tokens": INT,
        "seed": INT,
        "stop": _any,
        "temperature": FLOAT64,
        "frequency_penalty": FLOAT64,
        "presence_penalty": FLOAT64,
        "top_p": FLOAT64,
        "response_format": nested(_RESPONSE_FORMAT, "openai.ResponseFormat"),
        "tools": list_of(nested(Struct("Tool", {}), "api.Tool"), "[]api.Tool"),
        "reasoning": nested(Struct("Reasoning", {"effort": STRING}, "openai"), "openai.Reasoning"),
        "reasoning_effort": STRING,
        "logprobs": BOOL,
        "top_logprobs": INT,
        "_debug_render_only": BOOL,
    },
    "openai",
)

COMPLETION = Struct(
    "CompletionRequest",
    {
        "model": STRING,
        "prompt": STRING,
        "frequency_penalty": FLOAT32,
        "max_tokens": INT,
        "presence_penalty": FLOAT32,
        "seed": INT,
        "stop": _any,
        "stream": BOOL,
        "stream_options": _STREAM_OPTIONS,
        "temperature": FLOAT32,
        "top_p": FLOAT32,
        "suffix": STRING,
        "logprobs": INT,
        "_debug_render_only": BOOL,
    },
    "openai",
)

EMBED = Struct(
    "EmbedRequest",
    {"model": STRING, "input": _any, "truncate": BOOL, "dimensions": INT, "keep_alive": _duration, "options": _map},
)
EMBEDDINGS = Struct("EmbeddingRequest", {"model": STRING, "prompt": STRING, "keep_alive": _duration, "options": _map})
# mlx-shim's own route (POST /api/import), bound with the same Go-style rules as Ollama's requests.
IMPORT = Struct("ImportRequest", {"models": list_of(STRING, "[]string"), "stream": BOOL})
