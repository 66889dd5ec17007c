"""The option names Ollama knows, with their Go types: one table for request `options` and Modelfile PARAMETERs.

Ollama reports wrong types by the Go type name (`option "num_ctx" must be of type integer`), so the table
keeps Ollama's vocabulary rather than Python's.
"""

from __future__ import annotations

from typing import Any, Literal

GoType = Literal["integer", "float32", "boolean", "array"]

OPTION_TYPES: dict[str, GoType] = {
    # Runner (load-time) options.
    "num_ctx": "integer",
    "num_batch": "integer",
    "num_gpu": "integer",
    "main_gpu": "integer",
    "num_thread": "integer",
    "use_mmap": "boolean",
    # Per-request sampling options.
    "num_keep": "integer",
    "seed": "integer",
    "num_predict": "integer",
    "top_k": "integer",
    "top_p": "float32",
    "min_p": "float32",
    "typical_p": "float32",
    "repeat_last_n": "integer",
    "temperature": "float32",
    "repeat_penalty": "float32",
    "presence_penalty": "float32",
    "frequency_penalty": "float32",
    "stop": "array",
}


def coerce_parameter(name: str, raw: str) -> tuple[str, Any]:
    """Turn a Modelfile `PARAMETER name value` string into a typed value, with Ollama's error texts."""
    kind = OPTION_TYPES.get(name)
    if kind is None:
        raise ValueError(f"unknown parameter '{name}'")
    try:
        if kind == "integer":
            return name, int(raw)
        if kind == "float32":
            return name, float(raw)
        if kind == "boolean":
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return name, raw.lower() in ("true", "1")
    except ValueError:
        kind_word = {"integer": "int", "float32": "float", "boolean": "bool"}[kind]
        raise ValueError(f"invalid {kind_word} value [{raw}]") from None
    return name, raw
