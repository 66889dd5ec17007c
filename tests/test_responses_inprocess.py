"""/v1/responses in-process over the scripted fake backend: the SSE events in Ollama v0.24.0's order, names,
ids and fields (`ResponsesStreamConverter`), the whole response object's field order (`ToResponse`), zstd
bodies, and Ollama's error texts. tests/test_responses.py drives the same endpoint end to end with the
official `openai` client and the OpenAI Agents SDK."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
import zstandard

from shim.engine import Piece, ToolCall
from shim.errors import Kind, ShimError
from tests import test_protocol_inprocess as inprocess
from tests.asgi_harness import Exchange
from tests.fake_backend import FakeBackend, done

Scenario = inprocess.Scenario
run = inprocess.run  # the same fixture: a fresh app over the fake backend, with `tiny` in its store

INPUT = {"model": "tiny", "input": "hi"}
# ResponsesResponse's fields in its declared order (the whole object is a Go struct).
FIELDS = ["id", "object", "created_at", "completed_at", "status", "incomplete_details", "model",
          "previous_response_id", "instructions", "output", "error", "tools", "tool_choice", "truncation",
          "parallel_tool_calls", "text", "top_p", "presence_penalty", "frequency_penalty", "top_logprobs",
          "temperature", "reasoning", "usage", "max_output_tokens", "max_tool_calls", "store", "background",
          "service_tier", "metadata", "safety_identifier", "prompt_cache_key"]  # fmt: skip


def _post(app: Any, body: dict[str, Any] | bytes, encoding: str = "") -> Exchange:
    ex = Exchange(app, "POST", "/v1/responses", body if isinstance(body, bytes) else json.dumps(body).encode())
    if encoding:
        ex.scope["headers"].append((b"content-encoding", encoding.encode()))
    return ex


def _events(data: bytes) -> list[tuple[str, dict[str, Any]]]:
    """Each `event: X\\ndata: {...}\\n\\n` frame, checked for its layout, as (name, data)."""
    frames = data.split(b"\n\n")
    assert frames[-1] == b""
    out = []
    for frame in frames[:-1]:
        match = re.fullmatch(rb"event: ([a-z_.]+)\ndata: (\{.*\})", frame)
        assert match, frame
        out.append((match[1].decode(), json.loads(match[2])))
    return out


def _sorted_everywhere(value: Any) -> bool:
    """Go writes the events from maps: the keys of every object come sorted."""
    if isinstance(value, dict):
        return list(value) == sorted(value) and all(_sorted_everywhere(v) for v in value.values())
    if isinstance(value, list):
        return all(_sorted_everywhere(v) for v in value)
    return True


def _stream(run: Callable[[Scenario], None], body: dict[str, Any], *script: Any) -> list[tuple[str, dict[str, Any]]]:
    got: list[tuple[str, dict[str, Any]]] = []

    async def scenario(app: Any, fake: FakeBackend) -> None:
        fake.script(*script)
        async with _post(app, {**body, "stream": True}) as ex:
            status, headers = await ex.start()
            assert status == 200 and headers["content-type"] == "text/event-stream"
            assert headers["cache-control"] == "no-cache"
            got.extend(_events(await ex.rest()))
        assert fake.closed.is_set()

    run(scenario)
    names = [name for name, _ in got]
    assert all(data["type"] == name for name, data in got)
    assert [data["sequence_number"] for _, data in got] == list(range(len(got)))
    assert all(_sorted_everywhere(data) for _, data in got)
    assert names[:2] == ["response.created", "response.in_progress"] and names[-1] == "response.completed"
    return got


def test_streamed_text_is_one_message_item_with_its_deltas(run: Callable[[Scenario], None]) -> None:
    events = _stream(run, {**INPUT, "instructions": "Be brief."}, [Piece("Hel"), Piece("lo")], [done()])
    assert [name for name, _ in events] == [
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta", "response.output_text.done",
        "response.content_part.done", "response.output_item.done", "response.completed",
    ]  # fmt: skip
    created = events[0][1]["response"]
    assert re.fullmatch(r"resp_\d+", created["id"]) and created["status"] == "in_progress"
    assert created["output"] == [] and created["usage"] is None and created["completed_at"] is None
    assert created["instructions"] == "Be brief." and created["store"] is False and created["tools"] == []
    added = events[2][1]
    item_id = added["item"]["id"]
    assert re.fullmatch(r"msg_\d+", item_id)
    assert added == {"type": "response.output_item.added", "sequence_number": 2, "output_index": 0,
                     "item": {"id": item_id, "type": "message", "status": "in_progress", "role": "assistant",
                              "content": []}}  # fmt: skip
    part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    assert events[3][1]["part"] == part and events[3][1]["item_id"] == item_id
    assert [e[1]["delta"] for e in events[4:6]] == ["Hel", "lo"] and events[4][1]["logprobs"] == []
    assert events[6][1]["text"] == "Hello" and events[7][1]["part"] == {**part, "text": "Hello"}
    final = events[9][1]["response"]
    assert final["id"] == created["id"] and final["status"] == "completed" and isinstance(final["completed_at"], int)
    assert final["output"] == [events[8][1]["item"]] and final["output"][0]["content"][0]["text"] == "Hello"
    assert final["usage"] == {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5,
                              "input_tokens_details": {"cached_tokens": 0},
                              "output_tokens_details": {"reasoning_tokens": 0}}  # fmt: skip


def test_streamed_reasoning_then_tool_calls(run: Callable[[Scenario], None]) -> None:
    call = ToolCall("get_weather", {"city": "Paris"})
    events = _stream(run, INPUT, [Piece(thinking="Let me")], [Piece(thinking=" see")],
                     [Piece(tool_calls=[call])], [Piece("ignored once tools were called"), done()])  # fmt: skip
    assert [name for name, _ in events] == [
        "response.created", "response.in_progress", "response.output_item.added",
        "response.reasoning_summary_text.delta", "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done", "response.output_item.done", "response.output_item.added",
        "response.function_call_arguments.delta", "response.function_call_arguments.done",
        "response.output_item.done", "response.completed",
    ]  # fmt: skip
    reasoning = events[6][1]["item"]
    assert re.fullmatch(r"rs_\d+", reasoning["id"]) and events[6][1]["output_index"] == 0
    assert reasoning["summary"] == [{"type": "summary_text", "text": "Let me see"}]
    assert reasoning["encrypted_content"] == "Let me see"
    fc = events[7][1]
    assert fc["output_index"] == 1 and re.fullmatch(r"fc_\d+_0", fc["item"]["id"])
    assert fc["item"]["status"] == "in_progress" and fc["item"]["arguments"] == ""
    assert re.fullmatch(r"call_\w+", fc["item"]["call_id"]) and fc["item"]["name"] == "get_weather"
    assert events[8][1]["delta"] == events[9][1]["arguments"] == '{"city":"Paris"}'
    final = events[11][1]["response"]["output"]
    assert final == [reasoning, {**fc["item"], "status": "completed", "arguments": '{"city":"Paris"}'}]


def test_whole_response_object(run: Callable[[Scenario], None]) -> None:
    async def scenario(app: Any, fake: FakeBackend) -> None:
        fake.script([Piece("Hi", thinking="hmm"), done("length")])
        schema = {"type": "object", "b": 1, "a": 2}
        tool = {"type": "function", "name": "f", "parameters": {"type": "object", "b": {}, "a": {}}}
        body = {
            **INPUT,
            "temperature": 0.5,
            "max_output_tokens": 9,
            "reasoning": {"summary": "auto"},
            "text": {"format": {"type": "json_schema", "name": "x", "schema": schema}},
            "tools": [tool],
        }
        async with _post(app, body) as ex:
            status, headers = await ex.start()
            raw = await ex.rest()
        assert (status, headers["content-type"]) == (200, "application/json") and raw.endswith(b"}\n")
        answer = json.loads(raw)
        assert list(answer) == FIELDS
        rid = answer["id"]
        assert answer["status"] == "completed" and answer["completed_at"] >= answer["created_at"]
        assert answer["output"][0] == {"id": f"rs_{rid}", "type": "reasoning",
                                       "summary": [{"type": "summary_text", "text": "hmm"}],
                                       "encrypted_content": "hmm"}  # fmt: skip
        assert answer["output"][1]["type"] == "message" and answer["output"][1]["content"][0]["text"] == "Hi"
        assert answer["reasoning"] == {"summary": "auto"} and answer["max_output_tokens"] == 9
        assert b'"temperature":0.5' in raw and b'"top_p":1,' in raw  # Go's float64: 1, not 1.0
        # The schema is a json.RawMessage (as sent); a tool's parameters a Go map (sorted keys).
        assert b'"schema":{"type":"object","b":1,"a":2}' in raw and b'"parameters":{"a":{},"b":{},"type"' in raw
        assert answer["tools"] == [{"type": "function", "name": "f", "description": None, "strict": None,
                                    "parameters": {"a": {}, "b": {}, "type": "object"}}]  # fmt: skip
        sent = fake.requests[0]
        assert sent.format == {"type": "object", "b": 1, "a": 2} and sent.options.num_predict == 9
        assert sent.tools and sent.tools[0]["function"]["name"] == "f"

    run(scenario)


def test_input_items_convert_to_one_conversation(run: Callable[[Scenario], None]) -> None:
    async def scenario(app: Any, fake: FakeBackend) -> None:
        fake.script([Piece("Sunny."), done()])
        body = {"model": "tiny", "instructions": "sys", "input": [
            {"role": "user", "content": "weather?"},
            {"type": "reasoning", "encrypted_content": "think"},
            {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
            {"type": "function_call_output", "call_id": "call_1", "output": [{"type": "input_text", "text": "22 C"}]},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "It is"}]},
        ]}  # fmt: skip
        async with _post(app, body) as ex:
            assert (await ex.start())[0] == 200
            await ex.rest()
        messages = [(m.role, m.content, m.thinking, m.tool_calls, m.tool_call_id) for m in fake.requests[0].messages]
        assert messages == [
            ("system", "sys", "", [], ""),
            ("user", "weather?", "", [], ""),
            ("assistant", "", "think", [ToolCall("get_weather", {"city": "Paris"}, index=None, id="call_1")], ""),
            ("tool", "22 C", "", [], "call_1"),
            ("assistant", "It is", "", [], ""),
        ]  # fmt: skip

    run(scenario)


def test_zstd_body(run: Callable[[Scenario], None]) -> None:
    async def scenario(app: Any, fake: FakeBackend) -> None:
        fake.script([Piece("Hi"), done()])
        body = zstandard.ZstdCompressor().compress(json.dumps(INPUT).encode())
        async with _post(app, body, "zstd") as ex:
            status, _ = await ex.start()
            answer = json.loads(await ex.rest())
        assert status == 200 and answer["output"][0]["content"][0]["text"] == "Hi"
        assert fake.requests[0].messages[0].content == "hi"

    run(scenario)


@pytest.mark.parametrize(
    ("body", "encoding", "status", "message"),
    [
        ({"model": "tiny", "input": [{"type": "foo"}]}, "", 400, 'input[0]: unknown input item type: "foo"'),
        ({"model": "tiny", "input": [{"content": "x"}]}, "", 400, "input[0]: input item missing required 'type' field"),
        ({"model": "tiny", "input": 5}, "", 400,
         "input must be a string or array: json: cannot unmarshal number into Go value of type []json.RawMessage"),
        ({"model": "tiny", "input": [{"role": "user", "content": [{"type": "bogus"}]}]}, "", 400,
         "input[0]: content[0]: unknown content type: bogus"),
        ({"model": "tiny", "input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]}, "", 400,
         "file inputs are not currently supported"),
        ({"model": "tiny", "input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{x"}]}, "",
         400, "failed to parse function call arguments: "
         "invalid character 'x' looking for beginning of object key string"),
        ({**INPUT, "reasoning": {"effort": "huge"}}, "", 400,
         'invalid reasoning value: "huge" (must be "high", "medium", "low", "max", or "none")'),
        ({**INPUT, "model": 3}, "", 400,
         "json: cannot unmarshal number into Go struct field ResponsesRequest.model of type string"),
        ({**INPUT, "model": 3, "input": [{}]}, "", 400, "input[0]: input item missing required 'type' field"),
        ({**INPUT, "model": "nope"}, "", 404, "model 'nope' not found"),
        ({**INPUT, "model": ""}, "", 400, "model is required"),
        (b"not zstd", "zstd", 400, "invalid input: magic number mismatch"),
        (zstandard.ZstdCompressor().compress(json.dumps(INPUT).encode())[:-6], "zstd", 400, "unexpected EOF"),
        (zstandard.ZstdCompressor().compress(b" " * (20 << 20) + json.dumps(INPUT).encode()), "zstd", 400,
         "http: request body too large"),
    ],
)  # fmt: skip
def test_refusals_in_ollamas_words(
    run: Callable[[Scenario], None], body: dict[str, Any] | bytes, encoding: str, status: int, message: str
) -> None:
    async def scenario(app: Any, fake: FakeBackend) -> None:
        async with _post(app, body, encoding) as ex:
            got, headers = await ex.start()
            answer = json.loads(await ex.rest())
        kind = {400: "invalid_request_error", 404: "not_found_error"}[status]
        assert (got, headers["content-type"]) == (status, "application/json")
        assert answer == {"error": {"message": message, "type": kind, "param": None, "code": None}}
        assert fake.requests == []

    run(scenario)


def test_an_error_before_the_first_event_is_a_whole_answer(run: Callable[[Scenario], None]) -> None:
    async def scenario(app: Any, fake: FakeBackend) -> None:
        fake.script(ShimError("the input length exceeds the context length", Kind.BAD_INPUT))
        async with _post(app, {**INPUT, "stream": True}) as ex:
            status, headers = await ex.start()
            answer = json.loads(await ex.rest())
        assert (status, headers["content-type"], headers["cache-control"]) == (400, "application/json", "no-cache")
        assert answer["error"]["message"] == "the input length exceeds the context length"

    run(scenario)


def test_an_error_inside_the_stream_is_an_error_event(run: Callable[[Scenario], None]) -> None:
    async def scenario(app: Any, fake: FakeBackend) -> None:
        fake.script([Piece("Hi")], ShimError("boom"))
        async with _post(app, {**INPUT, "stream": True}) as ex:
            assert (await ex.start())[0] == 200
            events = _events(await ex.rest())
        assert events[-1] == ("error", {"type": "error", "sequence_number": 5, "code": None, "message": "boom",
                                        "param": None})  # fmt: skip

    run(scenario)


@pytest.mark.parametrize("stream", [False, True])
def test_no_input_only_loads_the_model(run: Callable[[Scenario], None], stream: bool) -> None:
    async def scenario(app: Any, fake: FakeBackend) -> None:
        async with _post(app, {"model": "tiny", "input": [], "stream": stream}) as ex:
            assert (await ex.start())[0] == 200
            data = await ex.rest()
        assert fake.loads == ["tiny:latest"] and fake.requests == []
        if stream:
            names = [name for name, _ in _events(data)]
            assert names == ["response.created", "response.in_progress", "response.completed"]
            assert _events(data)[-1][1]["response"]["output"] == []
        else:
            assert json.loads(data)["output"][0]["content"][0]["text"] == ""

    run(scenario)
