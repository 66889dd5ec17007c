"""POST /api/pull: Ollama's progress stream over a download that runs on a worker thread.

The thread (registry/hf_pull.py) blocks on the network; it hands each progress object to the event loop
through a queue, so the loop never waits on a socket. A client that goes away sets `cancelled`, which the
download checks between chunks: it stops, and its partial file stays for the next pull to continue.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from registry.catalog import Catalog, CatalogError
from registry.hf_pull import PullCancelled, PullError, pull
from registry.names import InvalidName, ModelName
from registry.store import Store
from shim.jsonbytes import go_json
from shim.responses import ndjson_response, unless_disconnected

log = logging.getLogger("mlx_shim")

_END = object()


class PullRequestError(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def start_pull(store: Store, requested: str) -> tuple[asyncio.Queue[Any], threading.Event]:
    """Validate the name and start the download thread; its objects arrive on the queue, then _END."""
    try:
        name = ModelName.parse(requested)
    except InvalidName:
        raise PullRequestError("invalid model name", 400) from None
    try:
        catalog = Catalog.load(store.home)
    except CatalogError as e:
        raise PullRequestError(str(e), 500) from None
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    cancelled = threading.Event()

    def put(obj: Any) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, obj)
        except RuntimeError:  # the server is shutting down: nobody is listening any more
            cancelled.set()

    def work() -> None:
        try:
            pull(store, catalog, name, put, cancelled)
        except PullError as e:
            put({"error": e.message})
        except PullCancelled:
            log.info("pull of %s stopped: the client went away", requested)
        except Exception as e:  # a bug must still end the stream in Ollama's shape
            log.exception("pull of %s failed", requested)
            put({"error": str(e) or type(e).__name__})
        finally:
            put(_END)

    threading.Thread(target=work, name=f"pull {requested}", daemon=True).start()
    return queue, cancelled


async def pull_response(
    request: Request, queue: asyncio.Queue[Any], cancelled: threading.Event, stream: bool
) -> Response:
    if stream:
        return ndjson_response(_batches(queue, cancelled))
    return await _last(request, queue, cancelled)


async def _batches(queue: asyncio.Queue[Any], cancelled: threading.Event) -> AsyncIterator[list[Any]]:
    try:
        while True:
            batch = [await queue.get()]
            while not queue.empty():
                batch.append(queue.get_nowait())
            done = batch[-1] is _END
            objects = [obj for obj in batch if obj is not _END]
            if objects:
                yield objects
            if done:
                return
    finally:
        cancelled.set()  # no-op after the end; stops the download when the client went away


async def _last(request: Request, queue: asyncio.Queue[Any], cancelled: threading.Event) -> Response:
    """Ollama's waitForStream: only the last object, or the error with status 500 (no charset)."""

    async def wait() -> Response:
        last: Any = None
        while (obj := await queue.get()) is not _END:
            last = obj
            if "error" in obj:
                return Response(go_json(obj), status_code=500, media_type="application/json")
        return Response(go_json(last), status_code=200, media_type="application/json")

    try:
        response = await unless_disconnected(request, wait())
    finally:
        cancelled.set()
    return response if response is not None else Response(status_code=499)
