"""HTTP responses shaped like gin's: JSON with charset, NDJSON streams, Ollama's error bodies.

The streaming contract (Ollama's streamResponse): if the first event is an error, answer it with its
status as plain JSON; once streaming has begun, an error becomes one more `{"error": ...}` line.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from shim.jsonbytes import go_json

JSON = "application/json; charset=utf-8"
NDJSON = "application/x-ndjson"


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(go_json(obj), status_code=status, media_type=JSON)


def error_response(message: str, status: int) -> Response:
    return json_response({"error": message}, status)


def ndjson_response(batches: AsyncIterator[list[Any]]) -> EventStream:
    """One compact JSON object per line; the objects that are ready together go out in one write."""

    async def body() -> AsyncIterator[bytes]:
        async for objects in batches:
            yield b"".join(go_json(obj) + b"\n" for obj in objects)

    return EventStream(body(), {"content-type": NDJSON})


class EventStream(Response):
    """A streamed answer, written from the handler's own task as its chunks come; a client that leaves cancels
    the writing (and so closes the chunks' iterator, which cancels their work). Starlette's StreamingResponse
    starts a task group and a task for every response, and its first chunk waits a pass of the event loop for
    that task: a quarter of a millisecond of every first token, measured on the CPU."""

    def __init__(self, chunks: AsyncIterator[bytes], headers: Mapping[str, str]) -> None:
        self.chunks = chunks
        self.status_code = 200
        self.background = None
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with Disconnection(receive):
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            async for chunk in self.chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})


class Disconnection:
    """Entered in a handler's task: cancels that task when the client goes away (its body has been read, so
    `receive` waits for that), and at the exit swallows that one cancellation, setting `left`. One watcher task
    for the whole wait, and the work itself runs in the handler's task, with nothing in between."""

    def __init__(self, receive: Receive) -> None:
        self.left = False
        self._receive = receive
        self._task: asyncio.Task[Any] | None = None
        self._watcher: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Disconnection:
        self._task = asyncio.current_task()
        self._watcher = asyncio.ensure_future(self._disconnected())
        self._watcher.add_done_callback(self._gone)
        return self

    async def _disconnected(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass

    def _gone(self, watcher: asyncio.Task[None]) -> None:
        # Runs between task steps: the handler is suspended inside the block, where the cancellation lands.
        if not watcher.cancelled() and watcher.exception() is None and self._task is not None:
            self.left = True
            self._task.cancel()

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: Any) -> bool:
        assert self._watcher is not None and self._task is not None
        self._watcher.remove_done_callback(self._gone)
        self._watcher.cancel()
        # Only this cancellation is swallowed: one from elsewhere too (a shutdown) still propagates.
        return self.left and kind is asyncio.CancelledError and self._task.uncancel() == 0
