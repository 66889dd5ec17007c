"""The Go values a template sees, modelled in Python: structs, nil-able slices and maps, type names.

Plain Python values stand for themselves (str, bool, int, float64, None for nil, dict and list for the
``map[string]any`` and ``[]any`` of decoded JSON); the classes here carry what plain values cannot.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple


class GoType(NamedTuple):
    name: str
    fields: tuple[tuple[str, str, str], ...]  # (Go field, JSON key, omitempty rule: "", "empty" or "nil")
    stringer: bool = False  # has a String() method returning its JSON


@dataclass(frozen=True, eq=False)
class Struct:
    type: GoType
    values: dict[str, Any]


class GoList(list):
    """A Go slice: ``nil`` marshals as null; ``stringer`` marks templateTools, which prints as JSON."""

    def __init__(self, items: Iterable[Any] = (), *, nil: bool = False, stringer: bool = False) -> None:
        super().__init__(items)
        self.nil, self.stringer = nil, stringer


class GoMap(dict):
    """A Go map: ``stringer`` for templateArgs/templateProperties (print as JSON, nil as ``{}``),
    ``ordered`` for api.ToolPropertiesMap (marshals in insertion order, not sorted), ``zero`` the value a
    missing key yields (Go's zero value of the element type: a struct for templateProperties)."""

    def __init__(
        self,
        items: dict,
        *,
        nil: bool = False,
        stringer: bool = False,
        ordered: bool = False,
        zero: Any = None,
    ) -> None:
        super().__init__(items)
        self.nil, self.stringer, self.ordered, self.zero = nil, stringer, ordered, zero


class PropertyType(list):
    """api.PropertyType: a JSON Schema type list that prints and marshals as a bare string when single."""


def lookup(mapping: dict, key: str) -> Any:
    """A map index: a missing key yields the element type's zero value."""
    return mapping.get(key, mapping.zero if isinstance(mapping, GoMap) else None)


_TYPE_NAMES = {bool: "bool", int: "int", float: "float64", str: "string", type(None): "<nil>"}


def go_type(value: Any) -> str:
    """The Go type name that error messages show."""
    if isinstance(value, Struct):
        return value.type.name
    return _TYPE_NAMES.get(type(value)) or ("map[string]interface {}" if isinstance(value, dict) else "[]interface {}")
