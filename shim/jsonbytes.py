"""JSON bytes as Go's encoding/json writes them: compact, with <, >, & and U+2028/2029 escaped.

Clients compare bodies with recordings of real Ollama, whose strings carry `\\u003c` where orjson would
write `<`. Those characters can only occur inside JSON strings, so replacing their bytes is exact.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import orjson

_ESCAPES = (
    (b"<", b"\\u003c"),
    (b">", b"\\u003e"),
    (b"&", b"\\u0026"),
    ("\u2028".encode(), b"\\u2028"),
    ("\u2029".encode(), b"\\u2029"),
)


def go_json(obj: Any, sort_keys: bool = False) -> bytes:
    """numpy float32 arrays come out as Go writes []float32: the shortest text that reads back the same float32.
    `sort_keys` writes every dict as Go writes a map (keys sorted); leave it off for Go structs (field order)."""
    data = orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY | (orjson.OPT_SORT_KEYS if sort_keys else 0))
    for raw, escaped in _ESCAPES:
        if raw in data:
            data = data.replace(raw, escaped)
    return data


def go_float(value: float) -> orjson.Fragment:
    """A float64 as Go's encoding/json writes it: the shortest digits that read back the same, in plain
    notation from 1e-6 up to 1e21 (`-0.000003814697265625`, `-16`), else as `-5e-7` (orjson writes the
    former `-3.814697265625e-6` and `-16.0`)."""
    text = repr(value)
    if value != 0 and (abs(value) < 1e-6 or abs(value) >= 1e21):
        if text[-4:-1] == "e-0":  # Go trims the exponent's leading zero: e-07 -> e-7
            text = text[:-2] + text[-1]
    else:
        text = format(Decimal(text), "f").removesuffix(".0")
    return orjson.Fragment(text.encode())


def go_quote(text: str) -> str:
    """Go's %q for the texts in Ollama's errors (close to JSON string quoting for these inputs)."""
    return json.dumps(text, ensure_ascii=False)
