"""Progress of long blocking work (a create that converts a GGUF, an import) streamed as Ollama streams it.

The work runs on a worker thread and hands each progress object to the event loop through a queue, so the
loop never waits on the disk or on a conversion. The answer follows Ollama's streamResponse/waitForStream:
an error before any progress is a plain JSON error with its own status; after progress has been sent it is
one more `{"error": ...}` line; with `stream: false` only the last object (or the error, with its status)
is sent, as `application/json` without a charset.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from shim.jsonbytes import go_json
from shim.mlx_threads import release_mlx_streams
from shim.responses import ndjson_response

log = logging.getLogger("mlx_shim")

_END = object()
_STREAM_JSON = "application/json"  # waitForStream and streamResponse's own error answers


@dataclass(frozen=True)
class StreamError:
    """The work's failure: its text and the HTTP status it answers with when nothing was sent yet."""

    message: str
    status: int = 500


Emit = Callable[[Any], None]
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
            emit(StreamError(str(e) or type(e).__name__))
        finally:
            release_mlx_streams()  # a create may quantize with MLX on this thread
            emit(_END)

    threading.Thread(target=run, name=name, daemon=True).start()
    return queue, cancelled


async def respond(queue: asyncio.Queue[Any], cancelled: threading.Event, stream: bool) -> Response:
    if not stream:
        return await _last(queue, cancelled)
    first = await queue.get()
    if isinstance(first, StreamError):
        cancelled.set()
        return _stream_json({"error": first.message}, first.status)
    if first is _END:
        return ndjson_response(_nothing())
    return ndjson_response(_batches(first, queue, cancelled))


async def _nothing() -> AsyncIterator[list[Any]]:
    return
    yield


async def _batches(first: Any, queue: asyncio.Queue[Any], cancelled: threading.Event) -> AsyncIterator[list[Any]]:
    batch = [first]
    try:
        while True:
            while not queue.empty():
                batch.append(queue.get_nowait())
            end = next((i for i, obj in enumerate(batch) if obj is _END or isinstance(obj, StreamError)), None)
            if end is not None:
                last = batch[end]
                objects = batch[:end] + ([{"error": last.message}] if isinstance(last, StreamError) else [])
                if objects:
                    yield objects
                return
            yield batch
            batch = [await queue.get()]
    finally:
        cancelled.set()  # no-op after the end; lets the work stop when the client went away


async def _last(queue: asyncio.Queue[Any], cancelled: threading.Event) -> Response:
    last: Any = None
    try:
        while (obj := await queue.get()) is not _END:
            if isinstance(obj, StreamError):
                return _stream_json({"error": obj.message}, obj.status)
            last = obj
    finally:
        cancelled.set()
    return _stream_json(last if last is not None else {}, 200)


def _stream_json(obj: dict[str, Any], status: int) -> Response:
    return Response(go_json(obj), status_code=status, media_type=_STREAM_JSON)
