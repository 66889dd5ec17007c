"""/v1 endpoints as Ollama serves them: converted to native requests, checked by the protocol-neutral service,
run on the same engine, answered in OpenAI's shapes (SSE laid out as Ollama v0.24.0 writes it) through the
one streaming loop with this protocol's writers."""

from __future__ import annotations

import random
import time
from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from registry.names import InvalidName, ModelName
from shim.engine import collect
from shim.errors import Kind, ShimError
from shim.jsonbytes import go_json
from shim.openai.binding import CHAT_COMPLETION, COMPLETION
from shim.openai.convert import chat_request, completion_request
from shim.openai.http import decoded_body, guarded, json_answer, read_body
from shim.openai.responses_convert import responses_request
from shim.openai.responses_writer import ResponsesWriter, new_ids, response_object
from shim.openai.writers import ZERO_USAGE, ChatWriter, CompletionWriter, Head, chat_completion, text_completion
from shim.request_body import parsed
from shim.routing import exact_route
from shim.service import ModelService, Prepared
from shim.streaming import collected, stream


def _sse_once(obj: dict[str, Any]) -> Response:
    """Ollama's /v1 writer turning a `_debug_render_only` answer (one unfinished response) into a stream:
    one chunk, no [DONE]."""
    return Response(b"data: " + go_json(obj) + b"\n\n", headers={"Content-Type": "text/event-stream"})


class OpenAIAPI:
    def __init__(self, service: ModelService) -> None:
        self.service = service

    def routes(self) -> list[Route]:
        return [
            Route("/v1/chat/completions", guarded(self.chat), methods=["POST"]),
            Route("/v1/completions", guarded(self.completions), methods=["POST"]),
            Route("/v1/responses", guarded(self.responses), methods=["POST"]),
            exact_route("/v1/models", guarded(self.models), methods=["GET"]),
            exact_route("/v1/models/{model:path}", guarded(self.model), methods=["GET"]),
        ]

    # -- models ----------------------------------------------------------------------------------------

    async def models(self, request: Request) -> Response:
        data = [
            {"id": m.name.display, "object": "model", "created": m.modified_ns // 10**9, "owned_by": m.name.namespace}
            for m in self.service.store.list()
        ]
        return json_answer({"object": "list", "data": data or None})  # Ollama sends null, not [], when empty

    async def model(self, request: Request) -> Response:
        requested = request.path_params["model"]
        try:
            stored = self.service.store.get(ModelName.parse(requested))
        except InvalidName:
            stored = None
        if stored is None:
            raise ShimError(f"model '{requested}' not found", Kind.NOT_FOUND)
        return json_answer({"id": requested, "object": "model", "created": stored.modified_ns // 10**9,
                      "owned_by": stored.name.namespace})  # fmt: skip

    # -- completions -----------------------------------------------------------------------------------

    async def chat(self, request: Request) -> Response:
        body, native = await read_body(request, CHAT_COMPLETION, lambda body: (body, chat_request(body)))
        prepared = await self.service.prepare_chat(native)
        head = Head(f"chatcmpl-{random.randrange(999)}", int(time.time()), native.model)
        if isinstance(prepared, Prepared) and body.get("_debug_render_only"):
            return await self._chat_debug(body, head, prepared)
        # Every message may convert to nothing (`content: []`): the service then only loads the model, and
        # its answer goes through the same writers as any other.
        events = self.service.events(prepared)
        if not body.get("stream"):
            piece, done = await collected(request, collect(events))
            return json_answer(chat_completion(head, piece, done))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return await stream(request, events, ChatWriter(head, include_usage))

    async def completions(self, request: Request) -> Response:
        body, native = await read_body(request, COMPLETION, lambda body: (body, completion_request(body)))
        prepared = await self.service.prepare_generate(native)
        head = Head(f"cmpl-{random.randrange(999)}", int(time.time()), native.model)
        if isinstance(prepared, Prepared):
            if body.get("_debug_render_only"):
                return await self._completion_debug(body, head, prepared)
            # Ollama's /v1 writer puts no logprobs into text completions: they are checked, not computed.
            prepared = replace(prepared, logprobs=None)
        # An empty prompt only loads the model; Ollama's /v1 writer converts that answer like any other.
        events = self.service.events(prepared)
        if not body.get("stream"):
            piece, done = await collected(request, collect(events))
            return json_answer(text_completion(head, piece, done))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return await stream(request, events, CompletionWriter(head, include_usage))

    async def responses(self, request: Request) -> Response:
        """The Responses API, stateless as Ollama's: the conversation converts to a chat request."""
        native, echo = await parsed(await decoded_body(request), responses_request)
        prepared = await self.service.prepare_chat(native)
        response_id, item_id = new_ids()
        events = self.service.events(prepared)
        if not echo.stream:
            piece, done = await collected(request, collect(events))
            return json_answer(response_object(echo, response_id, item_id, piece, done))
        return await stream(request, events, ResponsesWriter(echo, response_id, item_id))

    # -- _debug_render_only ---------------------------------------------------------------------------

    async def _chat_debug(self, body: dict[str, Any], head: Head, prepared: Prepared) -> Response:
        """The native zero ChatResponse through Ollama's writer: a chat.completion with an empty message, no
        finish reason and zero usage, plus `_debug_info` (which a streamed chunk has no field for)."""
        rendered = await self.service.render(prepared)
        if body.get("stream"):
            choice = {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
            return _sse_once(head.obj("chat.completion.chunk", [choice]))
        choice = {"index": 0, "message": {"role": "", "content": ""}, "finish_reason": None}
        debug = {"rendered_template": rendered}  # api.DebugInfo (no image_count: no model here takes images)
        return json_answer(head.obj("chat.completion", [choice], usage=ZERO_USAGE, _debug_info=debug))

    async def _completion_debug(self, body: dict[str, Any], head: Head, prepared: Prepared) -> Response:
        """Ollama's text completion has no `_debug_info` field: the render happens, its text is dropped."""
        await self.service.render(prepared)
        choice = {"text": "", "index": 0, "finish_reason": None}
        if body.get("stream"):
            chunk = {"id": head.id, "object": "text_completion", "created": head.created, "choices": [choice]}
            return _sse_once({**chunk, "model": head.model, "system_fingerprint": "fp_ollama"})
        return json_answer(head.obj("text_completion", [choice], usage=ZERO_USAGE))
