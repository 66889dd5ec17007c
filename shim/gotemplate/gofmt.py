"""How Go writes values as text: fmt's ``%v`` (template actions, print, printf) and encoding/json (``json``,
and the String() methods of Ollama's tool types, which return their JSON)."""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

from shim.gotemplate.errors import TemplateError
from shim.gotemplate.govalues import GoList, GoMap, PropertyType, Struct


def is_stringer(value: Any) -> bool:
    """Whether the value's type has a String() method, which fmt's %v and %s call."""
    if isinstance(value, (GoList, GoMap)):
        return value.stringer
    return isinstance(value, PropertyType) or (isinstance(value, Struct) and value.type.stringer)


def _string(value: Any) -> str:
    """The String() method of the types that have one."""
    if isinstance(value, PropertyType):
        return value[0] if len(value) == 1 else "[" + " ".join(value) + "]" if value else ""
    return "{}" if isinstance(value, GoMap) and not value else marshal(value)


def marshal(value: Any) -> str:
    """json.Marshal with its error dropped to "", as Ollama's json function and String() methods do."""
    try:
        return _json(value)
    except ValueError:
        return ""


def format_value(value: Any, nested: bool = False) -> str:
    """Go's fmt %v, calling String() on the JSON-printing types at any depth."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float(value, json=False)
    if value is None:
        return "<nil>"
    if is_stringer(value):
        return _string(value)
    if isinstance(value, Struct):
        if nested and value.type.name.startswith("*"):
            raise TemplateError(
                "template: unsupported template construct: printing a list of messages "
                "(Go prints their memory addresses)"
            )
        return "{" + " ".join(format_value(v, True) for v in value.values.values()) + "}"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{format_value(k)}:{format_value(value[k], True)}" for k in sorted(value)) + "]"
    return "[" + " ".join(format_value(v, True) for v in value) + "]"


def _float(x: float, *, json: bool) -> str:
    """The shortest round-tripping text, as Go writes it: fmt's %v uses an exponent when the decimal
    exponent is below -4 or at least 6 (1e+06), encoding/json when abs(x) is outside [1e-6, 1e21)."""
    if math.isnan(x) or math.isinf(x):
        if json:
            raise ValueError("json: unsupported value")
        return "NaN" if math.isnan(x) else "+Inf" if x > 0 else "-Inf"
    _, digit_tuple, exponent = Decimal(repr(abs(x))).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    point = len(digits) + int(exponent)  # abs(x) == 0.<digits> * 10**point
    sign = "-" if math.copysign(1.0, x) < 0 else ""
    if (x != 0 and not 1e-6 <= abs(x) < 1e21) if json else not -4 <= point - 1 < 6:
        e = point - 1
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if e < 0 else '+'}{abs(e):0{1 if json and e < 0 else 2}d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
_JSON_SPECIAL = re.compile('["\\\\\x00-\x1f<>&\u2028\u2029\ud800-\udfff]')


def _json_str(s: str) -> str:
    """A JSON string as Go writes it: HTML-safe (<, >, & escaped), U+2028/2029 escaped, bad UTF-8 as
    U+FFFD."""

    def escape(m: re.Match[str]) -> str:
        ch = m.group()
        if ch in _JSON_ESCAPES:
            return _JSON_ESCAPES[ch]
        return "\\ufffd" if "\ud800" <= ch <= "\udfff" else f"\\u{ord(ch):04x}"

    return '"' + _JSON_SPECIAL.sub(escape, s) + '"'


def _json(value: Any) -> str:
    """Go's encoding/json.Marshal: compact, struct fields in declaration order, map keys sorted."""
    if value is None:
        return "null"
    if isinstance(value, (bool, int)):
        return format_value(value)
    if isinstance(value, float):
        return _float(value, json=True)
    if isinstance(value, str):
        return _json_str(value)
    if isinstance(value, PropertyType) and len(value) == 1:
        return _json_str(value[0])
    if isinstance(value, list):
        return "null" if isinstance(value, GoList) and value.nil else "[" + ",".join(map(_json, value)) + "]"
    if isinstance(value, Struct):
        items = [
            (key, value.values[name])
            for name, key, omit in value.type.fields
            if not (omit == "nil" and value.values[name] is None or omit == "empty" and not value.values[name])
        ]
    elif isinstance(value, GoMap) and value.nil:
        return "null"
    else:
        items = [(k, value[k]) for k in (value if isinstance(value, GoMap) and value.ordered else sorted(value))]
    return "{" + ",".join(f"{_json_str(k)}:{_json(v)}" for k, v in items) + "}"
