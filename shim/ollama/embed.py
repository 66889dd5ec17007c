"""`POST /api/embed` and the legacy `POST /api/embeddings`, checked by the service in the order of Ollama's
EmbedHandler and EmbeddingsHandler, run on the engine's worker thread, answered with Ollama's shapes and texts.

Any model embeds (Ollama has no capability check here): an encoder with its declared pooling, or a
completion model's mean hidden state. /api/embed L2-normalises every vector (then truncates to `dimensions`
and normalises again); the legacy endpoint returns the model's vector as it comes, in float64.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shim.errors import Kind, ShimError
from shim.ollama.binding import EMBED, EMBEDDINGS
from shim.ollama.http import guarded, read_body
from shim.responses import json_response
from shim.service import Answered, ModelService, finished_vectors, prepare_embed, prepare_embedding
from shim.streaming import collected


class EmbedAPI:
    def __init__(self, service: ModelService) -> None:
        self.service = service

    def routes(self) -> list[Route]:
        return [
            Route("/api/embed", guarded(self.embed), methods=["POST"]),
            Route("/api/embeddings", guarded(self.embeddings), methods=["POST"]),
        ]

    async def embed(self, request: Request) -> Response:
        started = time.perf_counter_ns()
        req = await read_body(request, EMBED)
        prepared = await prepare_embed(self.service, req)
        if isinstance(prepared, Answered):
            return json_response({"model": req.model, "embeddings": []})
        result = await collected(request, self.service.embed(prepared))
        out: dict[str, Any] = {"model": req.model, "embeddings": finished_vectors(result, req.dimensions)}
        metrics = {
            "total_duration": time.perf_counter_ns() - started,
            "load_duration": result.load_duration,
            "prompt_eval_count": result.prompt_eval_count,
        }
        return json_response(out | {k: v for k, v in metrics.items() if v})

    async def embeddings(self, request: Request) -> Response:
        """The legacy endpoint: the model's vector as it comes, in float64; any failure after loading is a 500
        (as in Ollama)."""
        prepared = await prepare_embedding(self.service, await read_body(request, EMBEDDINGS))
        if isinstance(prepared, Answered):
            return json_response({"embedding": []})
        try:
            result = await collected(request, self.service.embed(prepared))
        except ShimError as e:  # EmbeddingsHandler answers every failure of the run with a 500
            raise ShimError(e.message, Kind.INTERNAL) from None
        return json_response({"embedding": [float(x) for x in result.embeddings[0]]})
