"""The chat a model's own Jinja template sees, shaped so that every family's template takes what Ollama's
clients send.

- Tool calls and their results are linked by id. Ollama's clients often send a result with only the tool's
  name (`tool_name`), and calls without ids; Mistral's and Gemma 4's templates find a result's call by id. A
  call without an id gets one from its place in the chat; a result without one takes the id of the earliest
  unanswered call of its tool (else the earliest unanswered call).
- Mistral's templates refuse ids that are not 9 characters long (`|length != 9`), while ours are
  `call_xxxxxxxx`: there every id becomes 9 alphanumerics, the same id always the same 9, so a result still
  finds its call and an unchanged history renders the same prefix for the prompt cache.
- A template that refuses a system message (Gemma 2's raises "System role not supported") gets the system
  text at the head of the first user message, where Gemma 3's own template puts it.
"""

from __future__ import annotations

import hashlib
from typing import Any

HFMessage = dict[str, Any]

_NINE_CHARACTER_IDS = "|length != 9"  # how Mistral's templates check a tool call id


def link_tool_calls(messages: list[HFMessage], template: str) -> list[HFMessage]:
    """`messages` with an id on every tool call and on every result that answers one."""
    nine = _NINE_CHARACTER_IDS in template
    pending: list[tuple[str, str]] = []  # (tool name, id) of the calls not answered yet
    linked: list[HFMessage] = []
    for index, message in enumerate(messages):
        message = dict(message)
        if message.get("tool_calls"):
            calls = []
            for number, call in enumerate(message["tool_calls"]):
                call_id = _template_id(str(call.get("id") or f"call_{index}_{number}"), nine)
                pending.append((str(call.get("function", {}).get("name", "")), call_id))
                calls.append({**call, "id": call_id})
            message["tool_calls"] = calls
        elif message.get("role") == "tool":
            answered = _answered(pending, message, nine)
            if answered is not None:
                message["tool_call_id"] = answered
        linked.append(message)
    return linked


def _answered(pending: list[tuple[str, str]], result: HFMessage, nine: bool) -> str | None:
    """The id of the call `result` answers, taken off `pending`."""
    if result.get("tool_call_id"):
        call_id = _template_id(str(result["tool_call_id"]), nine)
        match = next((p for p in pending if p[1] == call_id), None)
    else:
        match = next((p for p in pending if p[0] == result.get("name")), pending[0] if pending else None)
        call_id = match[1] if match else None
    if match is not None:
        pending.remove(match)
    return call_id


def _template_id(call_id: str, nine: bool) -> str:
    if not nine or (len(call_id) == 9 and call_id.isalnum()):
        return call_id
    return hashlib.sha256(call_id.encode()).hexdigest()[:9]


def fold_system(messages: list[HFMessage]) -> list[HFMessage] | None:
    """The system messages' text put at the head of the first user message (one made if none); None when
    there is no system message to fold."""
    system = [str(m.get("content") or "") for m in messages if m.get("role") == "system"]
    if not system:
        return None
    text = "\n\n".join(system)
    rest = [m for m in messages if m.get("role") != "system"]
    first = next((i for i, m in enumerate(rest) if m.get("role") == "user"), None)
    if first is None:
        return [{"role": "user", "content": text}, *rest]
    rest[first] = {**rest[first], "content": text + "\n\n" + str(rest[first].get("content") or "")}
    return rest
