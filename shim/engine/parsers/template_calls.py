"""Tool calls of a model served with an Ollama Go template (Modelfile TEMPLATE, a library model's template):
the call markup is read off the template itself, as Ollama's `tools/template.go` reads it, because nothing
else names it (the tokenizer's own chat template, if any, was not what rendered the prompt).

The tag is Ollama's `parseTag`: the first `{{ if }}` that tests `.ToolCalls`, its first non-blank text
(depth first, stopping at the first action), cut before any `{` and trimmed; `{` when there is none, so a
template that writes bare JSON calls (Llama 3.1's) reads a tag-less answer that opens with `{`. Qwen 2.5's
template gives `<tool_call>`, Mistral's `[TOOL_CALLS] [`, SmolLM2's `<tool_call>[`. The JSON after the tag
is read by `jsoncalls.JsonCalls`: `name` with `arguments` (or `parameters`), several calls, a list.

Ollama swallows everything after the tag; we pass on what does not parse as content (the project's rule:
markup is never dropped), so the closing markup the template writes after the calls (`</tool_call>`,
Mistral's `</s>`) must be known too: `template_tags` also gives the section's last text with the JSON's closing
brackets (and a string's quote) cut off, our addition to Ollama's derivation.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from shim.engine.parsers.base import CallFormat
from shim.engine.parsers.jsoncalls import JsonCalls
from shim.gotemplate import TemplateError
from shim.gotemplate.parser import Access, Branch, Node, Pipe, Text, parse

JSON_TAG = "{"  # Ollama's tag when the template names none: a tag-less JSON object opens the answer


def template_format(template: str, tools: list[dict[str, Any]] | None) -> CallFormat:
    """The call format of an answer to a prompt rendered with the Go template `template`."""
    tag, closing = template_tags(template)
    if tag in ("{", "["):  # Ollama reads these only as the answer's first non-blank character
        return JsonCalls(tools, tagless=True, opens=tag)
    return JsonCalls(tools, start=tag, reopen="[" if tag.endswith("[") else "", end=closing)


@lru_cache(maxsize=64)
def template_tags(template: str) -> tuple[str, str]:
    """The tool-call tag Ollama derives from the template, and the closing tag after the calls ("" if none).
    A template that does not parse gives Ollama's fallback (its prompt fails before any answer anyway)."""
    try:
        nodes = parse(template)
    except TemplateError:
        return JSON_TAG, ""
    section = _tool_calls_branch(nodes)
    if section is None:
        return JSON_TAG, ""
    first = _first_text(section.body)
    tag = _tag(first.text) if first is not None else JSON_TAG
    last = _last_text(section.body)
    closing = "" if last is None or last is first else last.text.lstrip('"]} \t\r\n').rstrip()
    return tag, "" if "{" in closing or closing == tag else closing


def _tag(text: str) -> str:
    """Ollama's cut: CRLF as LF, nothing from the first `{` on, trimmed; `{` if nothing is left."""
    return text.replace("\r\n", "\n").partition("{")[0].strip() or JSON_TAG


def _tool_calls_branch(nodes: Sequence[Node]) -> Branch | None:
    """Ollama's findToolCallNode: the first `if` whose pipeline names the field `.ToolCalls` (on dot, not on a
    variable), searched through if/else, range and with bodies in order."""
    for node in nodes:
        if not isinstance(node, Branch):
            continue
        if node.kind == "if" and _names_tool_calls(node.pipe):
            return node
        for body in (node.body, node.else_ or ()):
            if (found := _tool_calls_branch(body)) is not None:
                return found
    return None


def _names_tool_calls(pipe: Pipe) -> bool:
    args = (arg for cmd in pipe.cmds for arg in cmd.args)
    return any(isinstance(arg, Access) and arg.base is None and "ToolCalls" in arg.idents for arg in args)


def _first_text(nodes: Sequence[Node]) -> Text | None:
    """Ollama's findTextNode: the first non-blank text, depth first; an action, or a branch without text,
    ends the search (the text after it is the call's, not the tag)."""
    for node in nodes:
        if isinstance(node, Text):
            if node.text.strip():
                return node
        elif isinstance(node, Branch):
            return _first_text(node.body) or _first_text(node.else_ or ())
        elif isinstance(node, Pipe):
            return None
    return None


def _last_text(nodes: Sequence[Node]) -> Text | None:
    """The last non-blank text of the section, from the end (into the body of a trailing range or if)."""
    for node in reversed(nodes):
        if isinstance(node, Text) and node.text.strip():
            return node
        if isinstance(node, Branch) and (found := _last_text(node.body)) is not None:
            return found
    return None
