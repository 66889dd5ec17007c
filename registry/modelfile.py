"""The subset of Ollama's Modelfile that describes an MLX model: FROM, SYSTEM, TEMPLATE, PARAMETER, LICENSE,
MESSAGE.

Values may be bare, `"quoted"` or `\"\"\"triple-quoted\"\"\"` (multi-line), as in Ollama. Instructions we
cannot honour yet (ADAPTER, REQUIRES) are rejected instead of silently dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from registry.parameters import coerce_parameter


class ModelfileError(ValueError):
    pass


@dataclass
class Modelfile:
    from_: str
    system: str | None = None
    template: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    licenses: list[str] = field(default_factory=list)
    messages: list[dict[str, str]] = field(default_factory=list)


_INSTRUCTION = re.compile(r"(?im)^[ \t]*([A-Za-z]+)[ \t]+")
_SUPPORTED = {"from", "system", "template", "parameter", "license", "message"}
_ROLES = ("system", "user", "assistant")


def parse_modelfile(text: str) -> Modelfile:
    values: dict[str, str] = {}
    parameters: dict[str, Any] = {}
    licenses: list[str] = []
    messages: list[dict[str, str]] = []
    pos = 0
    while pos < len(text):
        line_end = text.find("\n", pos)
        line_end = len(text) if line_end == -1 else line_end
        line = text[pos:line_end].strip()
        if not line or line.startswith("#"):
            pos = line_end + 1
            continue
        match = _INSTRUCTION.match(text, pos)
        if not match:
            raise ModelfileError(f"command must be one of {_command_list()}: {line!r}")
        command = match.group(1).lower()
        if command not in _SUPPORTED:
            raise ModelfileError(f"unsupported Modelfile instruction {match.group(1).upper()!r}")
        if command == "message":
            role = text[match.end() : line_end].split(" ", 1)[0]
            if role.lower() not in _ROLES:
                raise ModelfileError('role must be one of "system", "user", or "assistant"')
            value, pos = _read_value(text, match.end() + len(role) + 1)
            messages.append({"role": role.lower(), "content": value})
            continue
        value, pos = _read_value(text, match.end())
        if command == "license":
            licenses.append(value)
        elif command == "parameter":
            key, _, raw = value.partition(" ")
            if not raw.strip():
                raise ModelfileError(f"PARAMETER {key!r} needs a value")
            name, coerced = coerce_parameter(key.strip(), _unquote(raw.strip()))
            if name == "stop":
                parameters.setdefault("stop", []).append(coerced)
            else:
                parameters[name] = coerced
        else:
            values[command] = value
    if "from" not in values:
        raise ModelfileError("no FROM line")
    return Modelfile(values["from"], values.get("system"), values.get("template"), parameters, licenses, messages)


def _read_value(text: str, start: int) -> tuple[str, int]:
    """Return the instruction's argument and the offset just after it (handles multi-line quotes)."""
    if text.startswith('"""', start):
        end = text.find('"""', start + 3)
        if end == -1:
            raise ModelfileError('unterminated """ quote')
        after = text.find("\n", end + 3)
        return text[start + 3 : end], len(text) if after == -1 else after + 1
    end = text.find("\n", start)
    end = len(text) if end == -1 else end
    return _unquote(text[start:end].strip()), end + 1


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _command_list() -> str:
    return ", ".join(sorted(c.upper() for c in _SUPPORTED))
