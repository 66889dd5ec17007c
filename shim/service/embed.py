"""Embedding requests, protocol-neutral: EmbedHandler's and EmbeddingsHandler's checks in their order (name,
input type, existence, options), the load-only answer for no input, and the vectors finished as Ollama
finishes them. Used by /api/embed, the legacy /api/embeddings and /v1/embeddings alike.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from registry.names import InvalidName, ModelName
from registry.store import StoredModel
from shim.engine import EmbedRequest, EmbedResult
from shim.errors import Kind, ShimError
from shim.jsonbytes import go_quote
from shim.service.models import Answered, ModelService
from shim.service.requests import EmbeddingRequest, TextEmbedRequest


async def prepare_embed(service: ModelService, req: TextEmbedRequest) -> EmbedRequest | Answered:
    """EmbedHandler's checks in its order: name, input type, existence, options; no input only loads."""
    requested = req.model
    if not requested.strip():
        raise ShimError(f"model '{requested}' not found", Kind.NOT_FOUND)
    name = _parse_name(requested)
    inputs = _inputs(req.input)
    stored = await _embeddable(service, name, requested)
    options = await service.options(stored, req.options)
    if not inputs:
        await service.load(stored, req.keep_alive)
        return Answered.because("load")
    return EmbedRequest(stored, options, inputs, req.truncate, req.keep_alive)


async def prepare_embedding(service: ModelService, req: EmbeddingRequest) -> EmbedRequest | Answered:
    """EmbeddingsHandler's checks in its order: name, existence, options; an empty prompt only loads. The
    legacy endpoint never truncates."""
    requested = req.model
    if not requested.strip():
        raise ShimError("model is required", Kind.BAD_INPUT)
    stored = await _embeddable(service, _parse_name(requested), requested)
    options = await service.options(stored, req.options)
    if not req.prompt:
        await service.load(stored, req.keep_alive)
        return Answered.because("load")
    return EmbedRequest(stored, options, [req.prompt], truncate=False, keep_alive=req.keep_alive)


def _parse_name(requested: str) -> ModelName:
    try:
        return ModelName.parse(requested)
    except InvalidName:
        raise ShimError("invalid model name", Kind.BAD_INPUT) from None


async def _embeddable(service: ModelService, name: ModelName, requested: str) -> StoredModel:
    """Embed reports a missing model with the scheduler's wording (a manifest whose directory is gone too)."""
    stored = await service.lookup(name)
    try:
        if stored is not None and await service.info(stored):
            return stored
    except (OSError, ValueError):
        pass
    raise ShimError(f"model {go_quote(requested)} not found, try pulling it first", Kind.NOT_FOUND)


def _inputs(value: Any) -> list[str]:
    """A string (empty means none) or a list of strings; anything else is Ollama's `invalid input type`."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ShimError("invalid input type", Kind.BAD_INPUT)


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
        raise ShimError("embedding contains NaN or Inf values", Kind.BAD_INPUT)
    norm = max(math.sqrt(float(np.sum(vector * vector, dtype=np.float32))), 1e-12)
    return vector * np.float32(1.0 / norm)
