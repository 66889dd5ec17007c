"""`POST /api/embed` and the legacy `POST /api/embeddings`, checked in the order of Ollama's EmbedHandler and
EmbeddingsHandler, run on the engine's worker thread, answered with Ollama's shapes and texts.

Any model embeds (Ollama has no capability check here): an encoder with its declared pooling, or a
completion model's mean hidden state. /api/embed L2-normalises every vector (then truncates to `dimensions`
and normalises again); the legacy endpoint returns the model's vector as it comes, in float64.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from registry.names import InvalidName, ModelName
from registry.store import StoredModel
from shim.engine import EmbedRequest, EmbedResult, EngineError
from shim.ollama.binding import EMBED, EMBEDDINGS
from shim.ollama.routes import ApiError, OllamaAPI, go_quote, read_body
from shim.responses import json_response, unless_disconnected


class EmbedAPI:
    def __init__(self, native: OllamaAPI) -> None:
        self.native = native

    def routes(self) -> list[Route]:
        return [
            Route("/api/embed", self.native.guarded(self.embed), methods=["POST"]),
            Route("/api/embeddings", self.native.guarded(self.embeddings), methods=["POST"]),
        ]

    async def embed(self, request: Request) -> Response:
        started = time.perf_counter_ns()
        req = await read_body(request, EMBED)
        prepared = await self.prepare_embed(req)
        if isinstance(prepared, dict):
            return json_response(prepared)
        result = await self.run(request, prepared)
        out: dict[str, Any] = {
            "model": req.get("model", ""),
            "embeddings": finished_vectors(result, req.get("dimensions", 0)),
        }
        metrics = {
            "total_duration": time.perf_counter_ns() - started,
            "load_duration": result.load_duration,
            "prompt_eval_count": result.prompt_eval_count,
        }
        return json_response(out | {k: v for k, v in metrics.items() if v})

    async def prepare_embed(self, req: dict[str, Any]) -> EmbedRequest | dict[str, Any]:
        """EmbedHandler's checks in its order: name, input type, existence, options; no input only loads."""
        requested = req.get("model", "")
        if not requested.strip():
            raise ApiError(f"model '{requested}' not found", 404)
        name = self._parse(requested)
        inputs = _inputs(req.get("input"))
        stored = await self._stored(name, requested)
        options = self.native._options(stored, req)
        if not inputs:
            await self.native._load(stored, req.get("keep_alive"))
            return {"model": requested, "embeddings": []}
        return EmbedRequest(stored, options, inputs, req.get("truncate", True), req.get("keep_alive"))

    async def embeddings(self, request: Request) -> Response:
        """The legacy endpoint never truncates, and any failure after loading is a 500 (as in Ollama)."""
        req = await read_body(request, EMBEDDINGS)
        requested = req.get("model", "")
        if not requested.strip():
            raise ApiError("model is required", 400)
        stored = await self._stored(self._parse(requested), requested)
        options = self.native._options(stored, req)
        prompt = req.get("prompt", "")
        if not prompt:
            await self.native._load(stored, req.get("keep_alive"))
            return json_response({"embedding": []})
        embed = EmbedRequest(stored, options, [prompt], truncate=False, keep_alive=req.get("keep_alive"))
        try:
            result = await self.run(request, embed)
        except ApiError as e:
            raise ApiError(e.message, 500) from None
        return json_response({"embedding": [float(x) for x in result.embeddings[0]]})

    async def run(self, request: Request, embed: EmbedRequest) -> EmbedResult:
        """The engine's answer; a client that leaves first cancels the job (499, as Ollama's canceled)."""
        try:
            result = await unless_disconnected(request, self.native.engine.embed(embed))
        except EngineError as e:
            raise ApiError(e.message, e.status) from None
        if result is None:
            raise ApiError("request canceled", 499)
        return result

    @staticmethod
    def _parse(requested: str) -> ModelName:
        try:
            return ModelName.parse(requested)
        except InvalidName:
            raise ApiError("invalid model name", 400) from None

    async def _stored(self, name: ModelName, requested: str) -> StoredModel:
        """Embed reports a missing model with the scheduler's wording (a manifest whose directory is gone too)."""
        stored = await self.native.lookup(name)
        try:
            if stored is not None and stored.info():
                return stored
        except (OSError, ValueError):
            pass
        raise ApiError(f"model {go_quote(requested)} not found, try pulling it first", 404)


def _inputs(value: Any) -> list[str]:
    """A string (empty means none) or a list of strings; anything else is Ollama's `invalid input type`."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ApiError("invalid input type", 400)


def finished_vectors(result: EmbedResult, dimensions: int) -> list[np.ndarray]:
    """Each vector L2-normalised; with 0 < dimensions < length, cut to that many values and normalised again."""
    out = []
    for vector in result.embeddings:
        vector = _normalized(np.asarray(vector, dtype=np.float32))
        if 0 < dimensions < len(vector):
            vector = _normalized(vector[:dimensions])
        out.append(vector)
    return out


def _normalized(vector: np.ndarray) -> np.ndarray:
    if not np.all(np.isfinite(vector)):
        raise ApiError("embedding contains NaN or Inf values", 400)
    norm = max(math.sqrt(float(np.sum(vector * vector, dtype=np.float32))), 1e-12)
    return vector * np.float32(1.0 / norm)
