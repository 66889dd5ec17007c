"""shim/engine/template_messages.py: tool calls and results linked by id (Mistral's 9-character ids), the
system text folded for templates without a system role. The families' real templates take these through the
server in tests/test_families.py; here the cases a single render does not show."""

from __future__ import annotations

from typing import Any

from shim.engine.template_messages import fold_system, link_tool_calls

MISTRAL = "{%- if not tool_call.id is defined or tool_call.id|length != 9 %}"


def call(name: str, call_id: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": "function", "function": {"name": name, "arguments": {}}}
    return {**entry, "id": call_id} if call_id else entry


def test_results_by_name_answer_their_own_calls_in_any_order() -> None:
    messages = [
        {"role": "assistant", "content": "", "tool_calls": [call("get_weather"), call("get_time")]},
        {"role": "tool", "content": "12:00", "name": "get_time"},
        {"role": "tool", "content": "sunny", "name": "get_weather"},
    ]
    linked = link_tool_calls(messages, MISTRAL)
    ids = {c["function"]["name"]: c["id"] for c in linked[0]["tool_calls"]}
    assert linked[1]["tool_call_id"] == ids["get_time"] and linked[2]["tool_call_id"] == ids["get_weather"]
    assert all(len(i) == 9 and i.isalnum() for i in ids.values()) and len(set(ids.values())) == 2


def test_ids_kept_where_the_template_takes_any_and_mapped_alike_for_mistral() -> None:
    messages = [
        {"role": "assistant", "content": "", "tool_calls": [call("get_weather", "call_ab12cd34")]},
        {"role": "tool", "content": "sunny", "tool_call_id": "call_ab12cd34"},
    ]
    assert link_tool_calls(messages, "{{ messages }}") == messages
    mistral = link_tool_calls(messages, MISTRAL)
    assert mistral[0]["tool_calls"][0]["id"] == mistral[1]["tool_call_id"] != "call_ab12cd34"
    assert link_tool_calls(mistral, MISTRAL) == mistral  # a 9-character id stays as it is
    assert messages[0]["tool_calls"][0]["id"] == "call_ab12cd34"  # the caller's messages are not changed


def test_system_folded_into_the_first_user_message() -> None:
    chat = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}, {"role": "assistant", "content": "A"}]
    assert fold_system(chat) == [{"role": "user", "content": "S\n\nU"}, {"role": "assistant", "content": "A"}]
    assert fold_system([{"role": "system", "content": "S"}]) == [{"role": "user", "content": "S"}]
    assert fold_system(chat[1:]) is None
