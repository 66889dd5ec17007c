"""Binding decoded JSON to Go request structs with encoding/json's semantics and error texts, for every
protocol (Ollama's api structs, its openai and anthropic middlewares' structs).

Go fills a struct field by field: null leaves the zero value, field names match case-insensitively,
unknown keys are ignored, a wrong JSON type is remembered and reported after decoding finishes (the first
one wins), while an error from a custom decoder (keep_alive, think, images, message) stops at once.
A `TypedStruct` binds straight into a typed request whose attributes are the struct's JSON keys.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from shim.gojson import OutOfRange, type_name, unmarshal_type_error

T = TypeVar("T")


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


RAW: Check = _raw


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


MAP: Check = _map  # a JSON object, as Go's map[string]any


def list_of(item: Check, go_type: str) -> Check:
    def check(value: Any, path: str, errors: Errors) -> Any:
        if not isinstance(value, list):
            errors.type_error(value, path, go_type)
            return None
        return [item(v, path, errors) for v in value if v is not None]

    return check


def bad_base64_offset(text: str) -> int:
    """Where Go's base64 decoder reports bad input ("illegal base64 data at input byte N")."""
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
        out = self.bind_fields(data, self.name, "", errors)
        if errors.first is not None:
            raise BindError(errors.first)
        return out

    def bind_fields(self, data: Any, struct: str, prefix: str, errors: Errors) -> dict[str, Any]:
        """The fields of `data` under the struct name and field path Go's errors will show; type errors go to
        `errors` (the caller decides when they abort), a custom decoder's error is raised at once."""
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
        return struct.bind_fields(value, struct.name, path.split(".", 1)[1] + ".", errors)

    return check


@dataclass(frozen=True)
class TypedStruct(Generic[T]):
    """A struct bound straight into its typed request: each field present and non-null is the keyword of the
    same name (a leading underscore dropped: `_debug_render_only`), so `into`'s defaults are Go's zero values."""

    struct: Struct
    into: Callable[..., T]

    def bind(self, data: Any) -> T:
        return self.into(**{key.lstrip("_"): value for key, value in self.struct.bind(data).items()})
