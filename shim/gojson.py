"""Decode request bodies the way Go's ``json.NewDecoder(body).Decode(&req)`` does, error texts included.

Ollama (gin) answers a bad body with ``{"error": err.Error()}`` and status 400, so clients and tests see
Go's exact wording. ``shim.gojson_scanner`` ports ``encoding/json``'s scanner (scanner.go) and the Decoder's
value framing (stream.go ``readValue``) to produce those texts; this module decodes (Go's number and surrogate
rules) and formats ``UnmarshalTypeError`` (decode.go) for the HTTP layer's own type checks.
Parsing itself stays in the C-accelerated stdlib ``json``: the scanner only runs when the fast path fails,
i.e. for bad bodies or bodies with trailing data.
(orjson is not used: it turns integers beyond 64 bits into floats, losing the literal Go would report.)
"""

from __future__ import annotations

import codecs
import contextlib
import json
import math
import re
import sys
import threading
from collections.abc import Iterator
from typing import Any

from shim.gojson_scanner import MAX_NESTING_DEPTH, EmptyBody, GoJSONError, quote_char, value_end

__all__ = [
    "EmptyBody",
    "OutOfRange",
    "GoJSONError",
    "decode",
    "quote_char",
    "type_name",
    "unmarshal_type_error",
    "unmarshal_value_error",
]


def _go_replace(exc: UnicodeError) -> tuple[str, int]:
    """Go's utf8.DecodeRune gives (RuneError, 1): one U+FFFD per bad byte, where Python's 'replace' merges."""
    assert isinstance(exc, UnicodeDecodeError)
    return "\ufffd", exc.start + 1


codecs.register_error("gojson.replace", _go_replace)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _no_constant(name: str) -> Any:
    raise ValueError(name)  # NaN/Infinity are not JSON; let the scanner word the error


def _fix_surrogates(value: Any) -> Any:
    """Go's unquote turns an unpaired \\uD800-\\uDFFF escape into U+FFFD; Python's json keeps it."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_fix_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_fix_surrogates(k): _fix_surrogates(v) for k, v in value.items()}
    return value


class OutOfRange(float):
    """A JSON number too large for float64 (`1e400`): Python reads it as infinity, Go's decoder fails with
    `cannot unmarshal number 1e400 ... of type float64`. The binding layer reports it with `.literal`."""

    literal: str

    def __new__(cls, literal: str) -> OutOfRange:
        number = super().__new__(cls, literal)
        number.literal = literal
        return number


def _go_float(literal: str) -> float:
    number = float(literal)
    return OutOfRange(literal) if math.isinf(number) else number


def _go_int(literal: str) -> int | float:
    """An integer literal past float64 (over 308 digits) fails Go's decoding into any number type too."""
    return int(literal) if len(literal) < 300 else _go_float(literal)


_NESTING = threading.Lock()  # the limit is the process's: large bodies are decoded on worker threads


@contextlib.contextmanager
def _room_for_nesting() -> Iterator[None]:
    """Python's json recurses once per level and stops at the recursion limit (1,000); Go's decoder accepts
    MAX_NESTING_DEPTH. The limit is raised only while such a body, already scanned to be within it, is built
    (one at a time: a second one restoring the limit would cut the first short)."""
    with _NESTING:
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, 3 * MAX_NESTING_DEPTH))
        try:
            yield
        finally:
            sys.setrecursionlimit(limit)


def decode(body: bytes) -> Any:
    """Decode the first JSON value of body like Go's json.Decoder.Decode.

    Trailing data after the first complete value is ignored; an empty or whitespace-only body raises
    EmptyBody; syntax errors raise GoJSONError with Go's text. Invalid UTF-8 and unpaired surrogate
    escapes in strings become U+FFFD as in Go. Numbers come back as int/float like json.loads.
    Nesting is accepted to Go's 10000 levels; a number beyond float64 comes back as OutOfRange.
    """
    try:
        text = body.decode("utf-8")
        value = json.loads(text, parse_constant=_no_constant, parse_float=_go_float, parse_int=_go_int)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raw = body[: value_end(body)]
        text = raw.decode("utf-8", "gojson.replace")
        with _room_for_nesting():
            value = json.loads(text, parse_float=_go_float, parse_int=_go_int)
            return _fix_surrogates(value) if _SURROGATE_ESCAPE.search(text) else value
    return _fix_surrogates(value) if _SURROGATE_ESCAPE.search(text) else value


def type_name(value: Any) -> str:
    """Go's UnmarshalTypeError.Value for a decoded JSON value ('null' only arises via Unmarshalers)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    if value is None:
        return "null"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def _describe(value: Any, literal: str | None) -> str:
    return f"number {literal}" if literal is not None else type_name(value)


def unmarshal_type_error(value: Any, field_path: str, go_type: str, *, literal: str | None = None) -> str:
    """Go's UnmarshalTypeError text for a struct field.

    field_path is Struct + "." + Field as Go (>= 1.20) builds it: Struct is the innermost struct type's
    name and Field the dotted JSON-name path from the root, e.g. "Message.messages.content" for a
    ChatRequest. go_type is reflect's spelling ("string", "[]string", "map[string]interface {}").
    Pass literal (the number's source text) for range/integer failures into int/uint/float fields,
    where Go writes "number 1.5" instead of "number".
    """
    desc = _describe(value, literal)
    return f"json: cannot unmarshal {desc} into Go struct field {field_path} of type {go_type}"


def unmarshal_value_error(value: Any, go_type: str, *, literal: str | None = None) -> str:
    """The same error with no struct context, e.g. a top-level array decoded into api.GenerateRequest."""
    return f"json: cannot unmarshal {_describe(value, literal)} into Go value of type {go_type}"
