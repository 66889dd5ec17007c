"""Ollama's native endpoints, validated in Ollama's order with Ollama's status codes and texts.

Each handler checks the request the way Ollama's GenerateHandler/ChatHandler do (body, fields, model
name, existence, unload, capabilities, options, load-only), then hands one CompletionRequest to the
engine and turns its events into NDJSON chunks or one JSON object.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from registry.model_dir import CorruptModel, ModelDirInfo
from registry.names import InvalidName, ModelName
from registry.release import release_replaced, release_weights
from registry.store import Store, StoredModel
from shim.broken_models import skip_broken
from shim.config import VERSION, Settings
from shim.engine import CompletionRequest, Done, Engine, EngineError, Infill, Message, Piece, collect
from shim.gojson import EmptyBody, GoJSONError, decode
from shim.jsonbytes import go_json
from shim.ollama import shapes
from shim.ollama.binding import CHAT, COPY, DELETE, GENERATE, PULL, PUSH, SHOW, BindError, Struct
from shim.ollama.pull import PullRequestError, pull_response, start_pull
from shim.ollama.push import push_response
from shim.ollama.show import show_response
from shim.options import GenerationOptions, OptionError, capped_num_ctx, resolve_options
from shim.responses import error_response, json_response, ndjson_response, unless_disconnected
from shim.routing import exact_route

log = logging.getLogger("mlx_shim")

# Ollama's runner refuses images for a model without a vision tower in these words (clients match them).
NO_VISION = "this model is missing data required for image input"


def go_quote(text: str) -> str:
    """Go's %q for the texts in Ollama's errors (close to JSON string quoting for these inputs)."""
    return json.dumps(text, ensure_ascii=False)


class ApiError(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


async def read_body(request: Request, struct: Struct) -> dict[str, Any]:
    try:
        return struct.bind(decode(await request.body()))
    except EmptyBody:
        raise ApiError("missing request body", 400) from None
    except (GoJSONError, BindError) as e:
        raise ApiError(e.message, 400) from None


class OllamaAPI:
    def __init__(self, store: Store, engine: Engine, settings: Settings) -> None:
        self.store = store
        self.engine = engine
        self.settings = settings

    def routes(self) -> list[Route]:
        return [
            Route("/", self.root, methods=["GET", "HEAD"]),
            Route("/api/version", self.version, methods=["GET", "HEAD"]),
            Route("/api/tags", self.tags, methods=["GET", "HEAD"]),
            exact_route("/api/ps", self.ps, methods=["GET"]),
            Route("/api/generate", self.guarded(self.generate), methods=["POST"]),
            Route("/api/chat", self.guarded(self.chat), methods=["POST"]),
            Route("/api/show", self.guarded(self.show), methods=["POST"]),
            Route("/api/copy", self.guarded(self.copy), methods=["POST"]),
            Route("/api/delete", self.guarded(self.delete), methods=["DELETE"]),
            Route("/api/pull", self.guarded(self.pull), methods=["POST"]),
            Route("/api/push", self.guarded(self.push), methods=["POST"]),
        ]

    @staticmethod
    def guarded(handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as e:
                return error_response(e.message, e.status)
            except ClientDisconnect:  # the client left mid-body: shim/access_log.py logs it, not a fault
                raise
            except Exception as e:  # a bug must still answer in Ollama's shape and leave the server up
                log.exception("unexpected error in %s", request.url.path)
                return error_response(str(e) or type(e).__name__, 500)

        return endpoint

    async def root(self, request: Request) -> Response:
        return PlainTextResponse("Ollama is running")

    async def version(self, request: Request) -> Response:
        return json_response({"version": VERSION})

    async def tags(self, request: Request) -> Response:
        models = []
        for stored in self.store.list():
            try:
                models.append(shapes.tags_entry(stored))
            except (OSError, ValueError) as e:
                skip_broken(stored.name.display, stored.digest, e)  # not "really present": listed without it
                continue
        return json_response({"models": models})

    async def ps(self, request: Request) -> Response:
        """Loaded models, the longest time left first. Size is the weights' MLX arrays plus the model's KV caches
        (running requests and the prefix cache)."""
        models = []
        for loaded in sorted(self.engine.loaded(), key=lambda m: m.expires_at, reverse=True):
            stored = loaded.stored
            default = resolve_options(self.settings.context_length, stored.parameters, None).num_ctx
            num_ctx = loaded.context_length or capped_num_ctx(default, loaded.info.context_length)
            size = loaded.memory_bytes + loaded.kv_bytes
            models.append(
                {
                    "name": stored.name.display,
                    "model": stored.name.display,
                    "size": size,
                    "digest": stored.digest,
                    "details": shapes.details(loaded.info),
                    "expires_at": shapes.expires_at(loaded.expires_at),
                    "size_vram": size if self.engine.on_gpu() else 0,
                    "context_length": num_ctx,
                }
            )
        return json_response({"models": models})

    async def show(self, request: Request) -> Response:
        req = await read_body(request, SHOW)
        requested = req.get("model") or req.get("name") or ""
        if not requested:
            raise ApiError("model is required", 400)
        stored = await self._find(requested, empty_status=400, empty_message="model is required")
        info = self._info(stored, requested)
        shown = await asyncio.to_thread(
            show_response, stored, info, req.get("system", ""), req.get("options"), req.get("verbose", False)
        )
        return json_response(shown)

    async def copy(self, request: Request) -> Response:
        """A copy is the same manifest under a new name (same bytes, so the same digest, as in Ollama)."""
        req = await read_body(request, COPY)
        source, destination = req.get("source", ""), req.get("destination", "")
        try:
            source_name = ModelName.parse(source)
        except InvalidName:
            raise ApiError(f"source {go_quote(source)} is invalid", 400) from None
        try:
            destination_name = ModelName.parse(destination)
        except InvalidName:
            raise ApiError(f"destination {go_quote(destination)} is invalid", 400) from None
        if not await asyncio.to_thread(self._copy, source_name, destination_name):
            raise ApiError(f"model {go_quote(source)} not found", 404)
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
        requested = req.get("model") or req.get("name") or ""
        if not requested.strip():  # modelref's ErrModelRequired, before the name is parsed
            raise ApiError("model is required", 400)
        try:
            name = ModelName.parse(requested)
        except InvalidName:
            raise ApiError(f"name {go_quote(requested)} is invalid", 400) from None
        if not await asyncio.to_thread(self._delete, name, requested):
            raise ApiError(f"model '{requested}' not found", 404)
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
        try:
            queue, cancelled = start_pull(self.store, req.get("model") or req.get("name") or "")
        except PullRequestError as e:
            raise ApiError(e.message, e.status) from None
        return await pull_response(request, queue, cancelled, req.get("stream", True))

    async def push(self, request: Request) -> Response:
        req = await read_body(request, PUSH)
        requested = req.get("model") or req.get("name") or ""
        if not requested:
            raise ApiError("model is required", 400)
        return push_response(self.store, requested, req.get("stream", True))

    # -- shared checks -------------------------------------------------------------------------------

    @staticmethod
    def _info(stored: StoredModel, requested: str) -> ModelDirInfo:
        """A manifest whose model directory is gone is a missing model, as a missing blob is in Ollama."""
        try:
            return stored.info()
        except CorruptModel as e:  # Ollama's show answers a model it cannot read with 500 and the cause
            raise ApiError(str(e), 500) from None
        except (OSError, ValueError):
            raise ApiError(f"model '{requested}' not found", 404) from None

    def _capabilities(self, stored: StoredModel, requested: str) -> tuple[str, ...]:
        return stored.capabilities(self._info(stored, requested))

    async def _find(self, requested: str, *, empty_status: int, empty_message: str) -> StoredModel:
        if not requested.strip():
            raise ApiError(empty_message, empty_status)
        try:
            name = ModelName.parse(requested)
        except InvalidName:
            raise ApiError("invalid model name", 400) from None
        stored = await self.lookup(name)
        if stored is None:
            raise ApiError(f"model '{requested}' not found", 404)
        return stored

    async def lookup(self, name: ModelName) -> StoredModel | None:
        """The stored model; a name still arriving (the embedded model's first-start import) is waited for,
        as a load is, rather than answered 404."""
        stored = self.store.get(name)
        if stored is None and (arrival := self.store.arriving(name)) is not None:
            with contextlib.suppress(Exception):  # its job logged why; the request then finds no model
                await asyncio.wrap_future(arrival)
            stored = self.store.get(name)
        return stored

    @staticmethod
    def _think(req: dict[str, Any], capabilities: tuple[str, ...], relax: bool = False) -> bool | str | None:
        """`relax` (Ollama's relax_thinking, set by /v1/messages): thinking asked of a model that cannot
        think is dropped rather than refused, so Claude Code works with any model."""
        think = req.get("think")
        if "thinking" in capabilities:
            return True if think is None else think
        if think and relax:
            return None
        if think:
            raise ApiError(f'"{req["model"]}" does not support thinking', 400)
        return think

    def _options(self, stored: StoredModel, req: dict[str, Any]) -> GenerationOptions:
        try:
            return resolve_options(self.settings.context_length, stored.parameters, req.get("options"))
        except OptionError as e:
            raise ApiError(str(e), 500) from None

    @staticmethod
    def _format(req: dict[str, Any]) -> str | dict[str, Any] | None:
        """`format` as Ollama's runner checks it: null and "" mean none, "json" any JSON object, an object
        a JSON schema; anything else is a 500 with the raw value quoted (Go's %q of the JSON bytes)."""
        fmt = req.get("format")
        if fmt is None or fmt == "":
            return None
        if fmt == "json" or isinstance(fmt, dict):
            return fmt
        # Go quotes the bytes as sent: orjson writes no integer past 64 bits and no 1e400
        raw = getattr(fmt, "literal", None) or (str(fmt) if type(fmt) is int else go_json(fmt).decode())
        raise ApiError(f'invalid format: {go_quote(raw)}; expected "json" or a valid JSON Schema object', 500)

    # -- /api/generate -------------------------------------------------------------------------------

    async def generate(self, request: Request) -> Response:
        started = time.perf_counter_ns()
        req = await read_body(request, GENERATE)
        completion = await self.prepare_generate(req)
        if isinstance(completion, dict):
            return json_response(completion)
        requested, raw = req.get("model", ""), completion.raw_prompt is not None
        if req.get("_debug_render_only"):
            return json_response(shapes.generate_debug(requested, await self.render(completion)))

        def chunk(piece: Piece) -> dict[str, Any]:
            return shapes.generate_chunk(requested, piece)

        def final(done: Done, collected: Piece | None) -> dict[str, Any]:
            extra = shapes.metrics(done, started, with_context=not raw)
            return shapes.generate_final(requested, extra, collected)

        return await self._respond(request, completion, req.get("stream", True), chunk, final)

    async def prepare_generate(self, req: dict[str, Any]) -> CompletionRequest | dict[str, Any]:
        """GenerateHandler's checks in its order; a load or unload request is answered here (the dict)."""
        if not 0 <= req.get("top_logprobs", 0) <= 20:
            raise ApiError("top_logprobs must be between 0 and 20", 400)
        requested = req.get("model", "")
        stored = await self._find(requested, empty_status=404, empty_message=f"model '{requested}' not found")
        prompt = req.get("prompt", "")
        if prompt == "" and req.get("keep_alive") == 0:
            await self.engine.unload(stored)
            return shapes.generate_final(requested, {"done_reason": "unload"})
        raw = req.get("raw", False)
        if raw and (req.get("template") or req.get("system") or req.get("context")):
            raise ApiError("raw mode does not support template, system, or context", 400)
        capabilities = self._capabilities(stored, requested)
        think = self._think(req, capabilities)
        if "completion" not in capabilities:  # an embedding model
            raise ApiError(f"{go_quote(requested)} does not support generate", 400)
        suffix = req.get("suffix", "")
        if suffix and "insert" not in capabilities:
            raise ApiError(f"{stored.name.full} does not support insert", 400)
        if req.get("images"):
            raise ApiError(NO_VISION, 400)
        options = self._options(stored, req)
        if prompt == "":
            await self._load(stored, req.get("keep_alive"))
            return shapes.generate_final(requested, {"done_reason": "load"})

        template = req.get("template") or stored.template
        if raw:
            return self._completion(stored, options, req, think, raw_prompt=prompt)
        if suffix:  # fill-in-the-middle: no system prompt, as in Ollama
            infill = Infill(prompt, suffix)
            return self._completion(
                stored, options, req, think, infill=infill, template=template, context=req.get("context")
            )
        system = req.get("system") or stored.system
        history = [] if "context" in req else _stored_messages(stored)
        messages = ([Message("system", system)] if system else []) + history + [Message("user", prompt)]
        return self._completion(
            stored, options, req, think, messages=messages, template=template, context=req.get("context")
        )

    # -- /api/chat -----------------------------------------------------------------------------------

    async def chat(self, request: Request) -> Response:
        started = time.perf_counter_ns()
        req = await read_body(request, CHAT)
        completion = await self.prepare_chat(req)
        if isinstance(completion, dict):
            return json_response(completion)
        requested = req.get("model", "")
        if req.get("_debug_render_only"):
            return json_response(shapes.chat_debug(requested, await self.render(completion)))

        def chunk(piece: Piece) -> dict[str, Any]:
            return shapes.chat_chunk(requested, piece)

        def final(done: Done, collected: Piece | None) -> dict[str, Any]:
            extra = shapes.metrics(done, started, with_context=False)
            return shapes.chat_final(requested, extra, collected)

        return await self._respond(request, completion, req.get("stream", True), chunk, final)

    async def prepare_chat(
        self, req: dict[str, Any], relax_thinking: bool = False
    ) -> CompletionRequest | dict[str, Any]:
        """ChatHandler's checks in its order; a load or unload request is answered here (the dict)."""
        if not 0 <= req.get("top_logprobs", 0) <= 20:
            raise ApiError("top_logprobs must be between 0 and 20", 400)
        requested = req.get("model", "")
        stored = await self._find(requested, empty_status=400, empty_message="model is required")
        raw_messages = req.get("messages", [])
        if not raw_messages and req.get("keep_alive") == 0:
            await self.engine.unload(stored)
            return shapes.chat_final(requested, {"done_reason": "unload"})
        capabilities = self._capabilities(stored, requested)
        think = self._think(req, capabilities, relax_thinking)  # before the capability list, as ChatHandler does
        if "completion" not in capabilities:  # an embedding model
            raise ApiError(f"{go_quote(requested)} does not support chat", 400)
        tools = req.get("tools") or None
        if tools and "tools" not in capabilities:
            raise ApiError(f"{stored.name.full} does not support tools", 400)
        if any(m.get("images") for m in raw_messages):
            raise ApiError(NO_VISION, 400)
        options = self._options(stored, req)
        if not raw_messages:
            await self._load(stored, req.get("keep_alive"))
            return shapes.chat_final(requested, {"done_reason": "load"})

        messages = _stored_messages(stored) + [
            Message(
                role=m.get("role", ""),
                content=m.get("content", ""),
                thinking=m.get("thinking", ""),
                tool_calls=m.get("tool_calls", []),
                tool_name=m.get("tool_name", ""),
                tool_call_id=m.get("tool_call_id", ""),
            )
            for m in raw_messages
        ]
        if raw_messages[0].get("role") != "system" and stored.system:
            messages.insert(0, Message("system", stored.system))
        return self._completion(stored, options, req, think, messages=messages, template=stored.template, tools=tools)

    # -- running a completion ------------------------------------------------------------------------

    @staticmethod
    def _completion(
        stored: StoredModel, options: GenerationOptions, req: dict[str, Any], think: bool | str | None, **prompt: Any
    ) -> CompletionRequest:
        """The fields generate and chat share; `prompt` says where the prompt comes from."""
        return CompletionRequest(
            model=stored,
            options=options,
            think=think,
            format=OllamaAPI._format(req),
            keep_alive=req.get("keep_alive"),
            truncate=req.get("truncate", True),
            shift=req.get("shift", True),
            logprobs=req.get("top_logprobs", 0) if req.get("logprobs") else None,
            **prompt,
        )

    async def render(self, completion: CompletionRequest) -> str:
        """The prompt `_debug_render_only` shows, rendered where the model is loaded (as Ollama's handlers
        render after scheduling the runner); template errors are a 500 there too."""
        try:
            return await self.engine.render(completion)
        except EngineError as e:
            raise ApiError(e.message, e.status) from None

    async def _load(self, stored: StoredModel, keep_alive: float | None) -> None:
        try:
            await self.engine.load(stored, keep_alive)
        except EngineError as e:
            raise ApiError(e.message, e.status) from None

    async def _respond(
        self, request: Request, completion: CompletionRequest, stream: bool, chunk: Any, final: Any
    ) -> Response:
        batches = self.engine.complete(completion)
        if not stream:
            return await self._collect(request, batches, final)
        try:
            first = await unless_disconnected(request, anext(batches))
        except EngineError as e:  # nothing sent yet: answer with the error's own status
            return error_response(e.message, e.status)
        if first is None:  # the client left while the request waited: it was dropped without generating
            return Response(status_code=499)

        async def lines() -> AsyncIterator[list[dict[str, Any]]]:
            batch = first
            try:
                while True:
                    yield [final(e, None) if isinstance(e, Done) else chunk(e) for e in batch]
                    if isinstance(batch[-1], Done):
                        return
                    batch = await anext(batches)
            except EngineError as e:  # already streaming: the error becomes one more line
                yield [{"error": e.message}]
            finally:
                await batches.aclose()

        return ndjson_response(lines())

    async def _collect(self, request: Request, batches: AsyncIterator[list[Piece | Done]], final: Any) -> Response:
        async def gather() -> Response:
            try:
                collected, done = await collect(batches)
            except EngineError as e:
                return error_response(e.message, e.status)
            return json_response(final(done, collected))

        response = await unless_disconnected(request, gather())
        return response if response is not None else Response(status_code=499)


def _stored_messages(stored: StoredModel) -> list[Message]:
    """A model's MESSAGE history goes before the request's own messages, as in Ollama."""
    return [Message(m.get("role", ""), m.get("content", "")) for m in stored.messages]
