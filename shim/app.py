"""The ASGI application: Ollama's routes over one engine, gin's 404/405 bodies, engine lifecycle."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from registry.store import Store
from shim.access_log import AccessLog, RequestCounters
from shim.anthropic.routes import AnthropicAPI
from shim.body_timeout import BodyIdleTimeout
from shim.browser_safety import BrowserSafety, allowed_origins
from shim.config import Settings
from shim.distributed.lockstep import Lockstep
from shim.engine import Engine
from shim.engine.scripted import load_scripts
from shim.limits import Limits
from shim.memory_return import ReturnMemory
from shim.metrics import Metrics
from shim.ollama.create import CreateAPI
from shim.ollama.embed import EmbedAPI
from shim.ollama.import_route import ImportAPI
from shim.ollama.routes import OllamaAPI
from shim.openai.embeddings import OpenAIEmbeddings
from shim.openai.routes import OpenAIAPI
from shim.routing import gin_allow
from shim.service import ModelBackend, ModelService

log = logging.getLogger("mlx_shim")


async def _gin_error(request: Request, exc: Exception) -> Response:
    """gin answers unknown paths and wrong methods with bare text/plain (no charset) bodies."""
    assert isinstance(exc, HTTPException)
    headers = {"Content-Type": "text/plain", **(exc.headers or {})}
    if "Allow" in headers:
        headers["Allow"] = gin_allow(headers["Allow"])
    if exc.status_code == 405:
        return Response(b"405 method not allowed", 405, headers=headers)
    if exc.status_code == 404:
        return Response(b"404 page not found", 404, headers=headers)
    return Response(str(exc.detail).encode(), exc.status_code, headers=headers)


def create_app(
    settings: Settings | None = None,
    store: Store | None = None,
    limits: Limits | None = None,
    backend: ModelBackend | None = None,
    lockstep: Lockstep | None = None,
) -> Starlette:
    """The server's app; `backend` replaces the MLX engine (the in-process protocol tests pass a fake)."""
    settings = settings or Settings()
    limits = limits or Limits()
    counters = RequestCounters()
    store = store or Store()
    engine = backend or Engine(
        default_keep_alive=settings.keep_alive,
        max_loaded_models=settings.max_loaded_models,
        num_parallel=settings.num_parallel,
        prefill_group=settings.prefill_group,
        max_queue=settings.max_queue,
        memory_budget=settings.memory_budget,
        prompt_cache_bytes=settings.prompt_cache_bytes,
        scripts=load_scripts(settings.test_scripts),
        lockstep=lockstep,
    )
    metrics = Metrics(counters, engine) if limits.metrics else None
    service = ModelService(store, engine, settings, on_done=metrics.observe if metrics else None)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine.start()
        try:
            yield
        finally:
            engine.stop()

    safety = Middleware(BrowserSafety, origins=allowed_origins(settings.origins), guard_hosts=settings.bind.is_loopback)
    app = Starlette(
        routes=OllamaAPI(service).routes()
        + CreateAPI(store).routes()
        + ImportAPI(store).routes()
        + EmbedAPI(service).routes()
        + OpenAIAPI(service).routes()
        + OpenAIEmbeddings(service).routes()
        + AnthropicAPI(service).routes()
        + (metrics.routes() if metrics else []),
        middleware=[
            Middleware(AccessLog, counters=counters, enabled=limits.access_log),
            Middleware(BodyIdleTimeout, seconds=limits.body_idle_seconds),
            Middleware(ReturnMemory),
            safety,
        ],
        lifespan=lifespan,
        exception_handlers={HTTPException: _gin_error},
    )
    app.state.engine = engine
    app.state.store = store
    app.state.counters = counters  # the access log's, shared with /metrics
    return app
