"""The protocol layer in-process, over a scripted fake backend (tests/fake_backend.py): each protocol's
framing send by send, errors before and inside a stream, clients that leave, and the load-only answers.
The real-server suite covers the same endpoints end to end over real MLX; these pin what the one streaming
loop and the writers do at each step, which a whole-body client cannot see."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from registry.names import ModelName
from registry.store import Store
from shim.app import create_app
from shim.config import Settings
from shim.engine import Piece, ToolCall
from shim.errors import Kind, ShimError
from tests.asgi_harness import Exchange
from tests.fake_backend import FakeBackend, done

Scenario = Callable[[Any, FakeBackend], Awaitable[None]]


@pytest.fixture
def run(tmp_path: Path, tiny_model_dir: Path) -> Callable[[Scenario], None]:
    """Runs a scenario against a fresh app whose store has `tiny` (the tiny model's directory) and whose
    backend is a fake."""

    def runner(scenario: Scenario) -> None:
        async def main() -> None:
            store = Store(tmp_path)
            store.put(
                ModelName.parse("tiny"), {"schemaVersion": 1, "source": {"type": "local", "path": str(tiny_model_dir)}}
            )
            fake = FakeBackend()
            await scenario(create_app(Settings(), store, backend=fake), fake)

        asyncio.run(main())

    return runner


def _post(app: Any, path: str, body: dict[str, Any]) -> Exchange:
    return Exchange(app, "POST", path, json.dumps(body).encode())


CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "think": False}


def test_ollama_ndjson_writes_each_batch_as_it_arrives(run: Callable[[Scenario], None]) -> None:
    async def scenario(app: Any, fake: FakeBackend) -> None:
        async with _post(app, "/api/chat", CHAT) as ex:
            fake.script([Piece("Hel"), Piece("lo")])
            status, headers = await ex.start()
            assert (status, headers["content-type"]) == (200, "application/x-ndjson")
            data, more = await ex.chunk()
            lines = [json.loads(line) for line in data.splitlines()]
            assert more and [line["message"]["content"] for line in lines] == ["Hel", "lo"]
            assert ex.sent.empty()  # nothing more until the backend has more
            fake.script([Piece("!"), done()])
            data, more = await ex.chunk()
            last = [json.loads(line) for line in data.splitlines()]
            assert last[0]["message"]["content"] == "!" and last[1]["done"] is True
            assert last[1]["done_reason"] == "stop" and last[1]["eval_count"] == 2
            assert await ex.rest() == b""
        assert fake.closed.is_set()

    run(scenario)


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        ("/api/chat", {**CHAT, "stream": True}, {"error": "the input length exceeds the context length"}),
        ("/v1/chat/completions", {"model": "tiny", "messages": CHAT["messages"], "stream": True},
         {"error": {"message": "the input length exceeds the context length", "type": "invalid_request_error",
                    "param": None, "code": None}}),
        ("/v1/messages", {"model": "tiny", "max_tokens": 8, "messages": CHAT["messages"], "stream": True},
         {"type": "error", "error": {"type": "invalid_request_error",
                                     "message": "the input length exceeds the context length"}}),
    ],
)  # fmt: skip
def test_an_error_before_the_first_event_is_a_whole_answer_with_its_status(
    run: Callable[[Scenario], None], path: str, body: dict[str, Any], expected: dict[str, Any]
) -> None:
    async def scenario(app: Any, fake: FakeBackend) -> None:
        fake.script(ShimError("the input length exceeds the context length", Kind.BAD_INPUT))
        async with _post(app, path, body) as ex:
            status, headers = await ex.start()
            answer = json.loads(await ex.rest())
        assert status == 400 and headers["content-type"].startswith("application/json")
        answer.pop("request_id", None)  # Anthropic's errors carry a fresh one
        assert answer == expected

    run(scenario)


@pytest.mark.parametrize(
    ("path", "body", "last_frame"),
    [
        ("/api/chat", CHAT, b'{"error":"boom"}\n'),
        ("/v1/chat/completions", {"model": "tiny", "messages": CHAT["messages"], "stream": True},
         b'data: {"error":{"message":"boom","type":"api_error","param":null,"code":null}}\n\n'),
        ("/v1/completions", {"model": "tiny", "prompt": "hi", "stream": True},
         b'data: {"error":{"message":"boom","type":"api_error","param":null,"code":null}}\n\n'),
        ("/v1/messages", {"model": "tiny", "max_tokens": 8, "messages": CHAT["messages"], "stream": True},
         b'event: error\ndata: {"type":"error","error":{"type":"api_error","message":"boom"}}\n\n'),
    ],
)  # fmt: skip
def test_an_error_inside_a_stream_is_its_last_frame(
    run: Callable[[Scenario], None], path: str, body: dict[str, Any], last_frame: bytes
) -> None:
    async def scenario(app: Any, fake: FakeBackend) -> None:
        fake.script([Piece("Hi")], ShimError("boom"))
        async with _post(app, path, body) as ex:
            status, _ = await ex.start()
            first, more = await ex.chunk()
            assert status == 200 and b"Hi" in first and more
            assert await ex.rest() == last_frame
        assert fake.closed.is_set()

    run(scenario)


@pytest.mark.parametrize("path", ["/api/chat", "/v1/chat/completions", "/v1/messages"])
def test_a_client_leaving_mid_stream_closes_the_work(run: Callable[[Scenario], None], path: str) -> None:
    body = {"model": "tiny", "max_tokens": 8, "messages": CHAT["messages"], "stream": True}

    async def scenario(app: Any, fake: FakeBackend) -> None:
        fake.script([Piece("Hi")])
        async with _post(app, path, body) as ex:
            assert (await ex.start())[0] == 200
            assert b"Hi" in (await ex.chunk())[0]
            ex.disconnect()
            await asyncio.wait_for(fake.closed.wait(), 5)

    run(scenario)


def test_a_client_leaving_before_the_first_event_drops_the_request(run: Callable[[Scenario], None]) -> None:
    async def scenario(app: Any, fake: FakeBackend) -> None:
        async with _post(app, "/api/chat", CHAT) as ex:
            await asyncio.sleep(0.05)  # the request waits for its first event, which never comes
            ex.disconnect()
            status, _ = await ex.start()
            await ex.rest()
        assert status == 499 and fake.closed.is_set()

    run(scenario)


@pytest.mark.parametrize("stream", [False, True])
def test_v1_chat_with_no_convertible_content_is_a_load_answered_by_the_chat_writer(
    run: Callable[[Scenario], None], stream: bool
) -> None:
    async def scenario(app: Any, fake: FakeBackend) -> None:
        body = {"model": "tiny", "messages": [{"role": "user", "content": []}], "stream": stream}
        async with _post(app, "/v1/chat/completions", body) as ex:
            status, _ = await ex.start()
            data = await ex.rest()
        assert status == 200 and fake.loads == ["tiny:latest"] and fake.requests == []
        if stream:
            finish = json.loads(data.split(b"\n\n")[0].removeprefix(b"data: "))
            assert finish["choices"][0]["finish_reason"] == "load" and data.endswith(b"data: [DONE]\n\n")
        else:
            assert json.loads(data)["choices"][0] == {
                "index": 0, "message": {"role": "assistant", "content": ""}, "finish_reason": "load"}  # fmt: skip

    run(scenario)


@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [
        ("/api/chat", {"messages": []}, 400, "model is required"),
        ("/api/chat", {"model": "nope"}, 404, "model 'nope' not found"),
        ("/api/generate", {"model": "tiny", "prompt": "x", "raw": True, "system": "s"}, 400,
         "raw mode does not support template, system, or context"),
        ("/api/generate", {"model": "tiny", "prompt": "x", "format": 3}, 500,
         'invalid format: "3"; expected "json" or a valid JSON Schema object'),
        ("/api/chat", {**CHAT, "top_logprobs": 21}, 400, "top_logprobs must be between 0 and 20"),
    ],
)  # fmt: skip
def test_service_refusals_in_ollamas_words(
    run: Callable[[Scenario], None], path: str, body: dict[str, Any], status: int, error: str
) -> None:
    async def scenario(app: Any, fake: FakeBackend) -> None:
        async with _post(app, path, body) as ex:
            got, headers = await ex.start()
            answer = json.loads(await ex.rest())
        assert (got, headers["content-type"], answer) == (status, "application/json; charset=utf-8", {"error": error})
        assert fake.requests == []

    run(scenario)


def test_tool_calls_are_named_in_ollamas_format_once_for_every_protocol(run: Callable[[Scenario], None]) -> None:
    """The engine parses calls without ids; the service names each (`call_` and 8 of [a-z0-9]), as Ollama's
    handler does, so every protocol writes the same id for a call."""
    body = {"model": "tiny", "max_tokens": 8, "messages": CHAT["messages"], "stream": False}

    async def scenario(app: Any, fake: FakeBackend) -> None:
        ids = []
        for path, find in (
            ("/api/chat", lambda out: out["message"]["tool_calls"][0]["id"]),
            ("/v1/chat/completions", lambda out: out["choices"][0]["message"]["tool_calls"][0]["id"]),
            ("/v1/messages", lambda out: out["content"][0]["id"]),
        ):
            fake.script([Piece(tool_calls=[ToolCall("get_weather", {"city": "Paris"})])], [done()])
            async with _post(app, path, body) as ex:
                assert (await ex.start())[0] == 200
                ids.append(find(json.loads(await ex.rest())))
        assert all(re.fullmatch(r"call_[a-z0-9]{8}", i) for i in ids)
        assert len(set(ids)) == 3

    run(scenario)
