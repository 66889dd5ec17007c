"""Ollama's template structs (templateMessage, templateTool, ...) built from API message and tool dicts.

These are the Go values behind ``.Messages`` and ``.Tools``: field names, JSON keys and omitempty rules as
Ollama declares them, so that printing, ``json`` and field access all behave as in Go.
"""

from __future__ import annotations

from typing import Any

from shim.gotemplate.errors import TemplateError
from shim.gotemplate.govalues import GoList, GoMap, GoType, PropertyType, Struct


def _go_struct(name: str, *fields: str, stringer: bool = False) -> GoType:
    """A struct type; a field is "Go" or "Go:json" or "Go:json:rule" (rule "empty" or "nil" for omitempty)."""
    return GoType(name, tuple(_field(f) for f in fields), stringer)


def _field(spec: str) -> tuple[str, str, str]:
    if ":" not in spec:
        return spec, spec, ""
    go, key, rule = (spec + "::").split(":")[:3]
    return go, key, rule


_MESSAGE = _go_struct(
    "*template.templateMessage",
    "Role",
    "Content",
    "Thinking",
    "Images",
    "ToolCalls",
    "ToolName",
    "ToolCallID",
)
_TOOL_CALL = _go_struct("template.templateToolCall", "ID", "Function")
_TOOL_CALL_FUNCTION = _go_struct("template.templateToolCallFunction", "Index", "Name", "Arguments")
_TOOL = _go_struct("template.templateTool", "Type:type", "Items:items:nil", "Function:function", stringer=True)
_TOOL_FUNCTION = _go_struct(
    "template.templateToolFunction",
    "Name:name",
    "Description:description",
    "Parameters:parameters",
    stringer=True,
)
_PARAMETERS = _go_struct(
    "template.templateToolFunctionParameters",
    "Type:type",
    "Defs:$defs:nil",
    "Items:items:nil",
    "Required:required:empty",
    "Properties:properties",
    stringer=True,
)
PROPERTY = _go_struct(
    "api.ToolProperty",
    "AnyOf:anyOf:empty",
    "Type:type:empty",
    "Items:items:nil",
    "Description:description:empty",
    "Enum:enum:empty",
    "Properties:properties:nil",
)


def _any(value: Any) -> Any:
    """A JSON value as Go decodes it into ``any``: every number becomes a float64."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, dict):
        return {str(k): _any(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_any(v) for v in value]
    raise TemplateError(f"template: unsupported value of type {type(value).__name__}")


def message_struct(m: dict) -> Struct:
    """Ollama's templateMessage for an API message dict."""
    calls = m.get("tool_calls") or []
    return Struct(
        _MESSAGE,
        {
            "Role": m.get("role") or "",
            "Content": m.get("content") or "",
            "Thinking": m.get("thinking", ""),
            "Images": GoList(m.get("images") or [], nil=not m.get("images")),
            "ToolCalls": GoList(map(_tool_call, calls), nil=not calls),
            "ToolName": m.get("tool_name", ""),
            "ToolCallID": m.get("tool_call_id", ""),
        },
    )


def _tool_call(call: dict) -> Struct:
    fn = call.get("function") or {}
    if (args := fn.get("arguments")) is not None and not isinstance(args, dict):
        raise TemplateError("template: tool call arguments must be a JSON object")
    return Struct(
        _TOOL_CALL,
        {
            "ID": call.get("id", ""),
            "Function": Struct(
                _TOOL_CALL_FUNCTION,
                {
                    "Index": fn.get("index", 0),
                    "Name": fn.get("name", ""),
                    "Arguments": GoMap(_any(args or {}), nil=args is None, stringer=True),
                },
            ),
        },
    )


def tool_struct(tool: dict) -> Struct:
    """Ollama's templateTool; JSON Schema keys that api.Tool does not declare are dropped, as Go does."""
    fn = tool.get("function") or {}
    params = fn.get("parameters") or {}
    props = params.get("properties")
    parameters = Struct(
        _PARAMETERS,
        {
            "Type": params.get("type", ""),
            "Defs": _any(params.get("$defs")),
            "Items": _any(params.get("items")),
            "Required": list(params.get("required") or []),
            "Properties": GoMap(
                {k: _property(v) for k, v in (props or {}).items()},
                nil=props is None,
                stringer=True,
                zero=_property({}),
            ),
        },
    )
    function = Struct(
        _TOOL_FUNCTION,
        {"Name": fn.get("name", ""), "Description": fn.get("description", ""), "Parameters": parameters},
    )
    return Struct(_TOOL, {"Type": tool.get("type", ""), "Items": _any(tool.get("items")), "Function": function})


def _property(prop: dict) -> Struct:
    kind, nested = prop.get("type"), prop.get("properties")
    return Struct(
        PROPERTY,
        {
            "AnyOf": [_property(p) for p in prop.get("anyOf") or []],
            "Type": PropertyType([kind] if isinstance(kind, str) else kind or []),
            "Items": _any(prop.get("items")),
            "Description": prop.get("description", ""),
            "Enum": _any(prop.get("enum") or []),
            "Properties": None
            if nested is None
            else GoMap({k: _property(v) for k, v in nested.items()}, ordered=True, zero=_property({})),
        },
    )
