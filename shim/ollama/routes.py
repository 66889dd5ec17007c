"""Ollama's native endpoints, validated in Ollama's order with Ollama's status codes and texts.

Generate and chat go through the protocol-neutral service (its checks are GenerateHandler's and
ChatHandler's); what it prepares runs on the engine and comes back as NDJSON chunks through the one
streaming loop, or as one JSON object; a load or unload is answered with one object, as Ollama does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from registry.names import InvalidName, ModelName
from registry.release import release_replaced, release_weights
from shim.broken_models import skip_broken
from shim.config import VERSION
from shim.engine import Done, Piece, collect
from shim.errors import Kind, ShimError
from shim.jsonbytes import go_quote
from shim.ollama import shapes
from shim.ollama.binding import CHAT, COPY, DELETE, GENERATE, PULL, PUSH, SHOW
from shim.ollama.http import NDJSONWriter, guarded, read_body
from shim.ollama.pull import start_pull
from shim.ollama.push import push_response
from shim.ollama.show import show_response
from shim.ollama.worker_stream import respond
from shim.options import resolve_options
from shim.responses import json_response
from shim.routing import exact_route
from shim.service import Answered, Event, ModelService, Prepared
from shim.streaming import collected, stream

log = logging.getLogger("mlx_shim")


class OllamaAPI:
    def __init__(self, service: ModelService) -> None:
        self.service = service
        self.store = service.store
        self.backend = service.backend
        self.settings = service.settings

    def routes(self) -> list[Route]:
        return [
            Route("/", self.root, methods=["GET", "HEAD"]),
            Route("/api/version", self.version, methods=["GET", "HEAD"]),
            Route("/api/tags", self.tags, methods=["GET", "HEAD"]),
            exact_route("/api/ps", self.ps, methods=["GET"]),
            Route("/api/generate", guarded(self.generate), methods=["POST"]),
            Route("/api/chat", guarded(self.chat), methods=["POST"]),
            Route("/api/show", guarded(self.show), methods=["POST"]),
            Route("/api/copy", guarded(self.copy), methods=["POST"]),
            Route("/api/delete", guarded(self.delete), methods=["DELETE"]),
            Route("/api/pull", guarded(self.pull), methods=["POST"]),
            Route("/api/push", guarded(self.push), methods=["POST"]),
        ]

    async def root(self, request: Request) -> Response:
        return PlainTextResponse("Ollama is running")

    async def version(self, request: Request) -> Response:
        return json_response({"version": VERSION})

    async def tags(self, request: Request) -> Response:
        return json_response({"models": await asyncio.to_thread(self._tags)})

    def _tags(self) -> list[dict[str, Any]]:
        """On a worker thread: every entry reads its model directory's facts."""
        models = []
        for stored in self.store.list():
            try:
                models.append(shapes.tags_entry(stored))
            except (OSError, ValueError) as e:
                skip_broken(stored.name.display, stored.digest, e)  # not "really present": listed without it
                continue
        return models

    async def ps(self, request: Request) -> Response:
        """Loaded models, the longest time left first. Size is the weights' MLX arrays plus the model's KV caches
        (running requests and the prefix cache)."""
        models = []
        for loaded in sorted(self.backend.loaded(), key=lambda m: m.expires_at, reverse=True):
            stored = loaded.stored
            trained = loaded.info.context_length
            default = resolve_options(self.settings.context_length, stored.parameters, None, trained).num_ctx
            num_ctx = loaded.context_length or default
            size = loaded.memory_bytes + loaded.kv_bytes
            models.append(
                {
                    "name": stored.name.display,
                    "model": stored.name.display,
                    "size": size,
                    "digest": stored.digest,
                    "details": shapes.details(loaded.info),
                    "expires_at": shapes.expires_at(loaded.expires_at),
                    "size_vram": size if self.backend.on_gpu() else 0,
                    "context_length": num_ctx,
                    # Served across processes (mlx.launch): backend, ranks, parallelism, each rank's weight bytes.
                    **({"split": loaded.split} if loaded.split is not None else {}),
                }
            )
        return json_response({"models": models})

    async def show(self, request: Request) -> Response:
        req = await read_body(request, SHOW)
        requested = req.model
        if not requested:
            raise ShimError("model is required", Kind.BAD_INPUT)
        stored = await self.service.find(requested, empty=ShimError("model is required", Kind.BAD_INPUT))
        info = await self.service.present_info(stored, requested)
        shown = await asyncio.to_thread(show_response, stored, info, req.system, req.options, req.verbose)
        split = next((m.split for m in self.backend.loaded() if m.stored.digest == stored.digest and m.split), None)
        return json_response(shown | {"split": split} if split else shown)  # loaded across processes (mlx.launch)

    async def copy(self, request: Request) -> Response:
        """A copy is the same manifest under a new name (same bytes, so the same digest, as in Ollama)."""
        req = await read_body(request, COPY)
        source, destination = req.source, req.destination
        try:
            source_name = ModelName.parse(source)
        except InvalidName:
            raise ShimError(f"source {go_quote(source)} is invalid", Kind.BAD_INPUT) from None
        try:
            destination_name = ModelName.parse(destination)
        except InvalidName:
            raise ShimError(f"destination {go_quote(destination)} is invalid", Kind.BAD_INPUT) from None
        if not await asyncio.to_thread(self._copy, source_name, destination_name):
            raise ShimError(f"model {go_quote(source)} not found", Kind.NOT_FOUND)
        return Response(status_code=200)

    def _copy(self, source: ModelName, destination: ModelName) -> bool:
        """On a worker thread: it writes files and waits for the store's lock."""
        with self.store.changing:
            stored = self.store.get(source)
            if stored is None:
                return False
            replaced = self.store.get(destination)
            self.store.put(destination, {k: v for k, v in stored.manifest.items() if k != "schemaVersion"})
            if replaced is not None:
                release_replaced(self.store, replaced)
            return True

    async def delete(self, request: Request) -> Response:
        """Removes the name; weights go too only when mlx-shim downloaded them and no other name uses them
        (a FROM directory, or a cache the user filled, is theirs)."""
        req = await read_body(request, DELETE)
        requested = req.model
        if not requested.strip():  # modelref's ErrModelRequired, before the name is parsed
            raise ShimError("model is required", Kind.BAD_INPUT)
        try:
            name = ModelName.parse(requested)
        except InvalidName:
            raise ShimError(f"name {go_quote(requested)} is invalid", Kind.BAD_INPUT) from None
        if not await asyncio.to_thread(self._delete, name, requested):
            raise ShimError(f"model '{requested}' not found", Kind.NOT_FOUND)
        return Response(status_code=200)

    def _delete(self, name: ModelName, requested: str) -> bool:
        """On a worker thread: it removes files and waits for the store's lock."""
        with self.store.changing:
            stored = self.store.remove(name)
            if stored is None:
                return False
            try:
                release_weights(self.store, stored)
            except OSError:  # the name is gone either way; leftover files are not worth failing the delete for
                log.exception("could not remove the downloaded weights of %s", requested)
            return True

    async def pull(self, request: Request) -> Response:
        req = await read_body(request, PULL)
        queue, cancelled = start_pull(self.store, req.model)
        return await respond(request, queue, cancelled, req.stream)

    async def push(self, request: Request) -> Response:
        req = await read_body(request, PUSH)
        if not req.model:
            raise ShimError("model is required", Kind.BAD_INPUT)
        return push_response(self.store, req.model, req.stream)

    # -- /api/generate -------------------------------------------------------------------------------

    async def generate(self, request: Request) -> Response:
        started = time.perf_counter_ns()
        req = await read_body(request, GENERATE)
        requested = req.model
        prepared = await self.service.prepare_generate(req)
        if isinstance(prepared, Answered):
            return json_response(shapes.generate_final(requested, {"done_reason": prepared.done.done_reason}))
        if req.debug_render_only:
            return json_response(shapes.generate_debug(requested, await self.service.render(prepared)))
        with_context = prepared.raw_prompt is None

        def final(done: Done, collected: Piece | None) -> dict[str, Any]:
            return shapes.generate_final(requested, shapes.metrics(done, started, with_context=with_context), collected)

        return await self._respond(request, prepared, req.stream, final, lambda p: shapes.generate_chunk(requested, p))

    async def chat(self, request: Request) -> Response:
        started = time.perf_counter_ns()
        req = await read_body(request, CHAT)
        requested = req.model
        prepared = await self.service.prepare_chat(req)
        if isinstance(prepared, Answered):
            return json_response(shapes.chat_final(requested, {"done_reason": prepared.done.done_reason}))
        if req.debug_render_only:
            return json_response(shapes.chat_debug(requested, await self.service.render(prepared)))

        def final(done: Done, collected: Piece | None) -> dict[str, Any]:
            return shapes.chat_final(requested, shapes.metrics(done, started, with_context=False), collected)

        return await self._respond(request, prepared, req.stream, final, lambda p: shapes.chat_chunk(requested, p))

    async def _respond(
        self,
        request: Request,
        prepared: Prepared,
        streamed: bool,
        final: Callable[[Done, Piece | None], dict[str, Any]],
        chunk: Callable[[Piece], dict[str, Any]],
    ) -> Response:
        """NDJSON chunks then the final object, or (not streamed) the final object with everything joined."""
        events = self.service.events(prepared)
        if not streamed:
            piece, done = await collected(request, collect(events))
            return json_response(final(done, piece))

        def line(event: Event) -> dict[str, Any]:
            return final(event, None) if isinstance(event, Done) else chunk(event)

        return await stream(request, events, NDJSONWriter(line))
