"""JSON bytes as Go's encoding/json writes them: compact, with <, >, & and U+2028/2029 escaped.

Clients compare bodies with recordings of real Ollama, whose strings carry `\\u003c` where orjson would
write `<`. Those characters can only occur inside JSON strings, so replacing their bytes is exact.
"""

from __future__ import annotations

from typing import Any

import orjson

_ESCAPES = (
    (b"<", b"\\u003c"),
    (b">", b"\\u003e"),
    (b"&", b"\\u0026"),
    ("\u2028".encode(), b"\\u2028"),
    ("\u2029".encode(), b"\\u2029"),
)


def go_json(obj: Any) -> bytes:
    """numpy float32 arrays come out as Go writes []float32: the shortest text that reads back the same float32."""
    data = orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)
    for raw, escaped in _ESCAPES:
        if raw in data:
            data = data.replace(raw, escaped)
    return data
