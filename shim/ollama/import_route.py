"""`POST /api/import`: mlx-shim's route that imports models from the server's own Ollama library.

Request: `{"models": ["llama3.2", ...], "stream": true}` (no `models`, or an empty list: every model of the
library). It reads only the library of the server's `OLLAMA_MODELS` (registry/ollama_library.py), never a
path a client names, and sits behind the same Host/Origin guard as every other route. The answer is pull's:
NDJSON `{"status": ...}` progress, one model after the other, ending with
`{"status": "success", "imported": [names], "skipped": [{"model", "reason"}]}`; with `stream: false` only that
last object. A bad name is a 400 and a name the library does not have a 404, before anything is imported.
"""

from __future__ import annotations

import asyncio
import threading

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from registry.ollama_import import import_models, select
from registry.ollama_library import OllamaLibrary
from registry.store import Store
from shim.ollama.binding import IMPORT
from shim.ollama.http import guarded, read_body
from shim.ollama.worker_stream import Emit, respond, start_worker


class ImportAPI:
    def __init__(self, store: Store) -> None:
        self.store = store

    def routes(self) -> list[Route]:
        return [Route("/api/import", guarded(self.import_models), methods=["POST"])]

    async def import_models(self, request: Request) -> Response:
        req = await read_body(request, IMPORT)
        library = await asyncio.to_thread(OllamaLibrary)  # the server's own OLLAMA_MODELS, at each request
        models = await asyncio.to_thread(select, library, req.models)  # raises ImportRequestError

        def work(emit: Emit, cancelled: threading.Event) -> None:
            if not models:
                emit({"status": f"no models found in the Ollama library at {library.root}"})
            emit(import_models(self.store, library, models, emit, cancelled).summary())

        queue, cancelled = start_worker(work, "import")
        return await respond(request, queue, cancelled, req.stream)
