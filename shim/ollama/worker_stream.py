"""Progress of long blocking work (a pull, a create that converts a GGUF, an import) streamed as Ollama
streams it.

The work runs on a worker thread and hands each progress object to the event loop through a queue, so the
loop never waits on the network, the disk or a conversion. The queue becomes an event iterator for the one
streaming loop (shim.streaming) with the NDJSON writer: a `ShimError` the work emits before any progress is
a plain JSON error with its kind's status; after progress has been sent it is one more `{"error": ...}`
line. With `stream: false` only the last object (or the error, with its status) is sent, as Ollama's
waitForStream does, as `application/json` without a charset; a progress object that is itself an
`{"error": ...}` (a pull's failure) is a 500 there.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncGenerator, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from shim.errors import ShimError
from shim.jsonbytes import go_json
from shim.mlx_threads import release_mlx_streams
from shim.ollama.http import NDJSONWriter
from shim.streaming import collected, stream

log = logging.getLogger("mlx_shim")

_END = object()

Emit = Callable[[Any], None]  # a progress object, or a ShimError that ends the work
Work = Callable[[Emit, threading.Event], None]


def start_worker(work: Work, name: str) -> tuple[asyncio.Queue[Any], threading.Event]:
    """Run `work(emit, cancelled)` on a thread; what it emits arrives on the queue, then the end marker.
    `cancelled` is set when the client goes away, for work that can stop between its steps."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    cancelled = threading.Event()

    def emit(obj: Any) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, obj)
        except RuntimeError:  # the server is shutting down: nobody is listening any more
            cancelled.set()

    def run() -> None:
        try:
            work(emit, cancelled)
        except Exception as e:  # a bug must still end the stream in Ollama's shape
            log.exception("%s failed", name)
            emit(ShimError(str(e) or type(e).__name__))
        finally:
            release_mlx_streams()  # a create may quantize with MLX on this thread
            emit(_END)

    threading.Thread(target=run, name=name, daemon=True).start()
    return queue, cancelled


async def respond(request: Request, queue: asyncio.Queue[Any], cancelled: threading.Event, streamed: bool) -> Response:
    if not streamed:
        try:
            return await collected(request, _last(queue))
        except ShimError as e:
            return _plain({"error": e.message}, e.status)
        finally:
            cancelled.set()
    return await stream(request, _batches(queue, cancelled), NDJSONWriter(_same, charset=False))


def _same(obj: dict[str, Any]) -> dict[str, Any]:
    return obj


async def _batches(queue: asyncio.Queue[Any], cancelled: threading.Event) -> AsyncGenerator[list[Any], None]:
    """What has arrived, a batch at a time, until the end marker; an emitted ShimError is raised."""
    try:
        while True:
            batch = [await queue.get()]
            while not queue.empty():
                batch.append(queue.get_nowait())
            end = next((i for i, obj in enumerate(batch) if obj is _END or isinstance(obj, ShimError)), None)
            if end is None:
                yield batch
                continue
            if batch[:end]:
                yield batch[:end]
            if isinstance(batch[end], ShimError):
                raise batch[end]
            return
    finally:
        cancelled.set()  # no-op after the end; lets the work stop when the client went away


async def _last(queue: asyncio.Queue[Any]) -> Response:
    last: Any = None
    while (obj := await queue.get()) is not _END:
        if isinstance(obj, ShimError):
            raise obj
        if "error" in obj:
            return _plain(obj, 500)
        last = obj
    return _plain(last if last is not None else {}, 200)


def _plain(obj: dict[str, Any], status: int) -> Response:
    return Response(go_json(obj), status_code=status, media_type="application/json")
