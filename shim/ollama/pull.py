"""POST /api/pull: Ollama's progress stream over a download that runs on a worker thread.

The thread (registry/hf_pull.py) blocks on the network; its progress objects reach the event loop through
worker_stream's queue, so the loop never waits on a socket. A client that goes away sets `cancelled`, which
the download checks between chunks: it stops, and its partial file stays for the next pull to continue.
A failed download ends the stream with an `{"error": ...}` progress object, as mlx-shim has always sent it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from registry.catalog import Catalog, CatalogError
from registry.hf_pull import PullCancelled, PullError, pull
from registry.names import InvalidName, ModelName
from registry.store import Store
from shim.errors import Kind, ShimError
from shim.ollama.worker_stream import Emit, start_worker

log = logging.getLogger("mlx_shim")


def start_pull(store: Store, requested: str) -> tuple[asyncio.Queue[Any], threading.Event]:
    """Validate the name and start the download thread; its objects arrive on the queue."""
    try:
        name = ModelName.parse(requested)
    except InvalidName:
        raise ShimError("invalid model name", Kind.BAD_INPUT) from None
    try:
        catalog = Catalog.load(store.home)
    except CatalogError as e:
        raise ShimError(str(e)) from None

    def work(emit: Emit, cancelled: threading.Event) -> None:
        try:
            pull(store, catalog, name, emit, cancelled)
        except PullError as e:
            emit({"error": e.message})
        except PullCancelled:
            log.info("pull of %s stopped: the client went away", requested)
        except Exception as e:  # a bug must still end the stream in Ollama's shape
            log.exception("pull of %s failed", requested)
            emit({"error": str(e) or type(e).__name__})

    return start_worker(work, f"pull {requested}")
