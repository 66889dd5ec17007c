"""The functions a template can call: Go's builtins and Ollama's json, currentDate, yesterdayDate and
toTypeScriptType, with the arity checks Go applies before calling them."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from shim.gotemplate.gofmt import format_value, is_stringer, marshal
from shim.gotemplate.govalues import Struct, go_type, lookup
from shim.gotemplate.structs import PROPERTY


class FuncError(Exception):
    """A template function failed; the executor adds where."""


def truth(value: Any) -> bool:
    """Go template truth: false, 0, nil and empty strings, slices and maps are false; structs are true."""
    if value is None:
        return False
    if isinstance(value, (bool, int, float)):
        return value != 0
    return len(value) > 0 if isinstance(value, (str, list, dict)) else True


def _kind(value: Any) -> str:
    """The Go basic kind that decides comparability: Go never compares an int with a float64."""
    for kind, types in (("bool", bool), ("int", int), ("float", float), ("string", str)):
        if isinstance(value, types):
            return kind
    return "nil" if value is None else "other"


def _eq(a: Any, *others: Any) -> bool:
    if not others:
        raise FuncError("missing argument for comparison")
    for b in others:
        ka, kb = _kind(a), _kind(b)
        if "nil" in (ka, kb):
            equal = ka == kb
        elif ka != kb:
            raise FuncError("incompatible types for comparison")
        elif ka == "other" and not (isinstance(a, Struct) and isinstance(b, Struct)):
            raise FuncError(f"non-comparable type {go_type(a)}")
        else:
            equal = a is b if ka == "other" else a == b
        if equal:
            return True
    return False


def _lt(a: Any, b: Any) -> bool:
    ka, kb = _kind(a), _kind(b)
    if ka not in ("int", "float", "string") or kb not in ("int", "float", "string"):
        raise FuncError("invalid type for comparison")
    if ka != kb:
        raise FuncError("incompatible types for comparison")
    return a < b


def _len(value: Any) -> int:
    if isinstance(value, (str, list, dict)):
        return len(value.encode() if isinstance(value, str) else value)  # Go counts a string's bytes
    raise FuncError("len of nil pointer" if value is None else f"len of type {go_type(value)}")


def _index(item: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(item, dict) and isinstance(key, str):
            item = lookup(item, key)
        elif isinstance(item, (list, str)) and _kind(key) == "int":
            seq = item.encode() if isinstance(item, str) else item  # a string indexes to a byte
            if not 0 <= key < len(seq):
                raise FuncError(f"index out of range: {key}")
            item = seq[key]
        else:
            raise FuncError(
                "index of untyped nil" if item is None else f"cannot index {go_type(item)} with {go_type(key)}"
            )
    return item


def _slice(item: Any, *bounds: Any) -> Any:
    if not isinstance(item, (list, str)) or len(bounds) > 2 or any(_kind(b) != "int" for b in bounds):
        raise FuncError(f"unsupported template construct: slice of {go_type(item)} with {len(bounds)} indexes")
    seq: bytes | list[Any] = item.encode() if isinstance(item, str) else item  # Go slices strings by bytes
    lo, hi = (*bounds, len(seq))[:2] if bounds else (0, len(seq))
    if not 0 <= lo <= hi <= len(seq):
        raise FuncError(f"index out of range: {lo}:{hi}")
    part = seq[lo:hi]
    return part.decode("utf-8", "replace") if isinstance(part, bytes) else part


def _operand(value: Any) -> str:
    """An fmt operand: unlike a template action, which dereferences first, fmt shows a pointer as &{...}."""
    return ("&" if isinstance(value, Struct) and value.type.name.startswith("*") else "") + format_value(value)


def _sprint(*args: Any) -> str:
    """fmt.Sprint: a space between operands when neither side is a string."""
    out = []
    for n, arg in enumerate(args):
        if n and not isinstance(arg, str) and not isinstance(args[n - 1], str):
            out.append(" ")
        out.append(_operand(arg))
    return "".join(out)


_VERB = re.compile(r"%(.?)", re.S)
_VERB_ACCEPTS = {
    "s": lambda a: isinstance(a, str) or is_stringer(a),
    "v": lambda a: True,
    "d": lambda a: _kind(a) == "int",
    "t": lambda a: isinstance(a, bool),
}


def _printf(format_: Any, *args: Any) -> str:
    """fmt.Sprintf for %s %v %d %t and %%; other verbs, flags and mismatched operands are rejected."""
    if not isinstance(format_, str):
        raise FuncError(f"wrong type for value; expected string; got {go_type(format_)}")
    queue = list(args)

    def verb(m: re.Match[str]) -> str:
        if (v := m.group(1)) == "%":
            return "%"
        if v not in _VERB_ACCEPTS:
            raise FuncError(f"unsupported template construct: printf verb %{v}")
        if not queue:
            raise FuncError(f"missing operand for %{v}")
        if not _VERB_ACCEPTS[v](arg := queue.pop(0)):
            raise FuncError(f"unsupported template construct: %{v} of {go_type(arg)}")
        return _operand(arg)

    out = _VERB.sub(verb, format_)
    if queue:
        raise FuncError(f"{len(queue)} extra operand(s)")
    return out


_TS_TYPES = {
    "string": "string",
    "number": "number",
    "integer": "number",
    "boolean": "boolean",
    "array": "any[]",
    "object": "Record<string, any>",
    "null": "null",
}


def _ts_type(value: Any) -> str:
    """Ollama's toTypeScriptType for a tool parameter property."""
    if not (isinstance(value, Struct) and value.type is PROPERTY):
        return "any"
    if value.values["AnyOf"]:
        return " | ".join(map(_ts_type, value.values["AnyOf"]))
    return " | ".join(_TS_TYPES.get(t, "any") for t in value.values["Type"]) or "any"


FUNCS: dict[str, Any] = {  # `and` and `or` short-circuit, so the executor runs them itself
    "not": lambda v: not truth(v),
    "eq": _eq,
    "ne": lambda a, b: not _eq(a, b),
    "lt": _lt,
    "le": lambda a, b: _lt(a, b) or _eq(a, b),
    "gt": lambda a, b: not (_lt(a, b) or _eq(a, b)),
    "ge": lambda a, b: not _lt(a, b),
    "len": _len,
    "index": _index,
    "slice": _slice,
    "print": _sprint,
    "printf": _printf,
    "println": lambda *a: " ".join(map(_operand, a)) + "\n",
    "json": marshal,
    "toTypeScriptType": _ts_type,
    "currentDate": lambda *_: date.today().isoformat(),
    "yesterdayDate": lambda *_: (date.today() - timedelta(days=1)).isoformat(),
}
ARITY = {
    "and": (1, None),
    "or": (1, None),
    "not": (1, 1),
    "eq": (1, None),
    "ne": (2, 2),
    "lt": (2, 2),
    "le": (2, 2),
    "gt": (2, 2),
    "ge": (2, 2),
    "len": (1, 1),
    "index": (1, None),
    "slice": (1, None),
    "printf": (1, None),
    "json": (1, 1),
    "toTypeScriptType": (1, 1),
}
