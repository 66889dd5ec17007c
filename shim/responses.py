"""HTTP responses shaped like gin's: JSON with charset, NDJSON streams, Ollama's error bodies.

The streaming contract (Ollama's streamResponse): if the first event is an error, answer it with its
status as plain JSON; once streaming has begun, an error becomes one more `{"error": ...}` line.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from shim.jsonbytes import go_json

JSON = "application/json; charset=utf-8"
NDJSON = "application/x-ndjson"

T = TypeVar("T")


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(go_json(obj), status_code=status, media_type=JSON)


def error_response(message: str, status: int) -> Response:
    return json_response({"error": message}, status)


def ndjson_response(batches: AsyncIterator[list[Any]]) -> StreamingResponse:
    """One compact JSON object per line; the objects that are ready together go out in one write."""

    async def body() -> AsyncIterator[bytes]:
        async for objects in batches:
            yield b"".join(go_json(obj) + b"\n" for obj in objects)

    return StreamingResponse(body(), media_type=NDJSON)


async def until_disconnected(request: Request) -> None:
    """Resolve when the client goes away (the body has been read, so receive() waits for that)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T | None:
    """Run `work`, cancelling it if the client disconnects first (then return None)."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(until_disconnected(request))
    try:
        done, _ = await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
    return task.result() if task in done else None
