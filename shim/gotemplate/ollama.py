"""Ollama's side of a template: its Values, how Template.Execute builds the value map from them (collating
messages, rendering a legacy template once per turn) and how it cuts the last turn after ``.Response``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from shim.gotemplate.errors import TemplateError
from shim.gotemplate.execute import execute
from shim.gotemplate.govalues import GoList
from shim.gotemplate.parser import Access, Branch, Cmd, Node, Pipe, identifiers, parse
from shim.gotemplate.structs import message_struct, tool_struct


@dataclass
class Values:
    """Ollama's template.Values; build it with :func:`chat_values` or :func:`generate_values`."""

    messages: list[dict]
    tools: list[dict] | None = None
    suffix: str = ""
    think: bool = False
    think_level: str = ""
    is_think_set: bool = False
    prompt: str = ""  # read only together with ``suffix`` (fill-in-the-middle), as in Ollama


def chat_values(
    messages: list[dict],
    *,
    tools: list[dict] | None = None,
    think: bool | str | None = None,
    model_system: str = "",
    model_messages: Iterable[dict] = (),
) -> Values:
    """Values for ``/api/chat``: Modelfile MESSAGEs first, and its SYSTEM unless the chat opens with one."""
    msgs = [*model_messages, *messages]
    if model_system and (not messages or messages[0].get("role") != "system"):
        msgs.insert(0, {"role": "system", "content": model_system})
    return Values(messages=msgs, tools=tools, **_think_fields(think))


def generate_values(
    prompt: str,
    *,
    system: str = "",
    suffix: str = "",
    think: bool | str | None = None,
    model_system: str = "",
    model_messages: Iterable[dict] = (),
) -> Values:
    """Values for ``/api/generate``: a suffix means fill-in-the-middle, else system, MESSAGEs, user prompt."""
    if suffix:
        return Values(messages=[], prompt=prompt, suffix=suffix, **_think_fields(think))
    msgs = [{"role": "system", "content": system or model_system}] if system or model_system else []
    msgs += [*model_messages, {"role": "user", "content": prompt}]
    return Values(messages=msgs, **_think_fields(think))


def _think_fields(think: bool | str | None) -> dict[str, Any]:
    """api.ThinkValue's Bool() and String(): a level string enables thinking, plain true means "medium"."""
    if isinstance(think, str):
        return {"think": True, "think_level": think, "is_think_set": True}
    return {"think": bool(think), "think_level": "medium" if think else "", "is_think_set": think is not None}


def _collate(messages: list[dict]) -> tuple[str, list[dict]]:
    """Ollama's collate: all system contents joined; consecutive same-role messages (but tool results)
    merged into one."""
    system = "\n\n".join(m.get("content") or "" for m in messages if m.get("role") == "system")
    collated: list[dict] = []
    for m in messages:
        if collated and collated[-1].get("role") == m.get("role") and m.get("role") != "tool":
            collated[-1] = {
                **collated[-1],
                "content": (collated[-1].get("content") or "") + "\n\n" + (m.get("content") or ""),
            }
        else:
            collated.append(m)
    return system, collated


class Template:
    """A parsed Ollama prompt template."""

    def __init__(self, source: str, nodes: tuple[Node, ...], uses_messages: bool) -> None:
        self._source = source
        self._nodes = nodes
        self._uses_messages = uses_messages

    @classmethod
    def parse(cls, text: str) -> Template:
        """Parse like Ollama's template.Parse, which appends ``{{ .Response }}`` to a template that uses
        neither ``.Messages`` nor ``.Response``."""
        nodes = parse(text)
        names = {name.lower() for name in identifiers(nodes)}
        if not names & {"messages", "response"}:
            response = Access(len(text), ".Response", None, ("Response",))
            nodes += (Pipe(len(text), ".Response", (), False, (Cmd(len(text), ".Response", (response,)),)),)
        return cls(text, nodes, "messages" in names)

    def execute(self, values: Values) -> str:
        """Render like Ollama's Template.Execute.

        Fill-in-the-middle values render once. A template that uses ``.Messages`` renders once with all
        (collated) messages. Any other ("legacy") template renders once per system/prompt/response turn,
        the last turn with the template cut after ``.Response`` so that no end-of-turn marker follows the
        text the model is to continue.
        """
        system, messages = _collate(values.messages)
        think = {"Think": values.think, "ThinkLevel": values.think_level, "IsThinkSet": values.is_think_set}
        if values.prompt and values.suffix:
            return self._run(self._nodes, {"Prompt": values.prompt, "Suffix": values.suffix, "Response": "", **think})
        if self._uses_messages:
            return self._run(
                self._nodes,
                {
                    "System": system,
                    "Messages": GoList(map(message_struct, messages), nil=not messages),
                    "Tools": GoList(map(tool_struct, values.tools or []), nil=values.tools is None, stringer=True),
                    "Response": "",
                    **think,
                },
            )
        out, turn = [], {"System": "", "Prompt": "", "Response": ""}
        for m in messages:
            role = m.get("role")
            system_after_turn = role == "system" and (turn["Prompt"] or turn["Response"])
            if system_after_turn or (role == "user" and turn["Response"]):
                out.append(self._run(self._nodes, {**turn, **think}))
                turn = dict.fromkeys(turn, "")
            if key := {"system": "System", "user": "Prompt", "assistant": "Response"}.get(role or ""):
                turn[key] = m.get("content") or ""
        out.append(self._run(_cut_after_response(self._nodes), {**turn, **think}))
        return "".join(out)

    def _run(self, nodes: tuple[Node, ...], root: dict[str, Any]) -> str:
        return execute(self._source, nodes, root)


def _cut_after_response(nodes: tuple[Node, ...]) -> tuple[Node, ...]:
    """Port of Ollama's deleteNode: keep the first ``.Response`` field and drop everything after it.

    Like Ollama it walks lists and branch bodies but not branch conditions, and a pipeline left without
    arguments drops its whole action (so ``{{ .Response | f }}`` disappears).
    """
    cut = False

    def walk(node: Any) -> Any:
        nonlocal cut
        if isinstance(node, Access) and node.base is None and "Response" in node.idents:
            cut = True
            return node
        if cut:
            return None
        if isinstance(node, tuple):
            return tuple(kept for kept in map(walk, node) if kept is not None)
        if isinstance(node, Branch):
            body = walk(node.body)
            if node.else_ is None:
                return replace(node, body=body)
            if (else_ := walk(node.else_)) is None:  # Go's deleteNode panics on this nil list
                raise TemplateError("template: cannot cut after a .Response that is followed by an {{else}}")
            return replace(node, body=body, else_=else_)
        if isinstance(node, Pipe):
            cmds = []
            for cmd in node.cmds:
                if not (args := tuple(kept for kept in map(walk, cmd.args) if kept is not None)):
                    return None
                cmds.append(replace(cmd, args=args))
            return replace(node, cmds=tuple(cmds))
        return node

    return walk(nodes)
